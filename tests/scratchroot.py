"""A scratch root for installing the packages as an administrator would,
with dpkg --root and rpm --root, without touching the machine.

Every command runs in a private mount namespace where the scratch root has
the machine's /usr under a writable overlay (the packages' files under /usr
land in the overlay, never in the real /usr), /dev, and copies of the
account files, so that maintainer scripts and scriptlets run chrooted there
as they would on a host: /bin/sh, python3, addgroup, groupadd and
dpkg-divert all work.  The dpkg and rpm databases are the scratch root's
own, empty but for what the tests install, so dependencies on the host's
packages are not checked (--force-depends, --nodeps).  dpkg and rpm run
chrooted there, as the administrator's would on the host itself.

OverlaidHost is the same overlay idea without the chroot: commands run on
the machine's own tree, with its system directories under overlays, so that
a test sees everything they changed there (make install and uninstall).
"""

import os
import shutil
import stat
import subprocess

_ENTER = r'''
set -e
root=$1 upper=$2 work=$3
shift 3
mkdir -p "$root/usr" "$root/etc" "$root/dev" "$root/tmp" "$root/run" \
    "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$upper" "$work"
chmod 1777 "$root/tmp"
for name in bin sbin lib lib64; do
    [ -L "$root/$name" ] || [ ! -e "/$name" ] || ln -s "usr/$name" "$root/$name"
done
for name in passwd group shadow gshadow login.defs nsswitch.conf adduser.conf; do
    [ -e "$root/etc/$name" ] || [ ! -e "/etc/$name" ] || cp -p "/etc/$name" "$root/etc/"
done
[ -e "$root/var/lib/dpkg/status" ] || : > "$root/var/lib/dpkg/status"
mount -t overlay overlay -o "lowerdir=/usr,upperdir=$upper,workdir=$work" "$root/usr"
mount --bind /dev "$root/dev"
exec "$@"
'''


class ScratchRoot:
    """*outer*: words that every command runs under, such as a private
    network namespace's ``ip netns exec NAME`` for maintainer scripts that
    change the firewall (by default, a network namespace of its own)."""

    def __init__(self, top, outer=()):
        self.top = str(top)
        self.root = os.path.join(self.top, "root")
        # A network namespace of its own at least: the maintainer scripts
        # run ossec-ar adopt, which reads the firewall, never the machine's.
        self.outer = list(outer) or ["unshare", "-n"]
        os.makedirs(self.root, exist_ok=True)

    def run(self, argv, check=True):
        full = self.outer + [
            "unshare", "-m", "--propagation", "private", "sh", "-c", _ENTER, "sh", self.root,
            os.path.join(self.top, "usr-upper"), os.path.join(self.top, "usr-work")] + list(argv)
        # utf-8 whatever the locale: deb-systemd-helper prints arrows.
        result = subprocess.run(full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                encoding="utf-8", errors="replace", timeout=300)
        if check and result.returncode != 0:
            raise AssertionError("%s exited %d:\n%s" % (argv, result.returncode,
                                                         result.stdout))
        return result

    def chroot(self, argv, check=True):
        """Run *argv* chrooted into the scratch root; package files named in
        it are copied in first.  dpkg and rpm run there whole, so that names
        (the ossec group in dpkg's statoverrides) resolve in the scratch
        root's accounts, as on a real host."""
        inside = []
        for arg in argv:
            if arg.endswith((".deb", ".rpm")) and os.path.isfile(arg):
                os.makedirs(self.path("/tmp/packages"), exist_ok=True)
                shutil.copy(arg, self.path("/tmp/packages"))
                arg = "/tmp/packages/" + os.path.basename(arg)
            inside.append(arg)
        return self.run(["chroot", self.root] + inside, check=check)

    def dpkg(self, *args, check=True):
        return self.chroot(["dpkg", "--force-depends"] + list(args), check=check)

    def rpm(self, *args, check=True):
        return self.chroot(["rpm"] + list(args), check=check)

    def path(self, relative):
        return os.path.join(self.root, relative.lstrip("/"))

    def usr_path(self, relative):
        """Where a file the packages put under /usr really is: the overlay."""
        return os.path.join(self.top, "usr-upper", os.path.relpath(relative, "/usr"))

    def group_id(self, name):
        with open(self.path("/etc/group")) as f:
            for line in f:
                fields = line.split(":")
                if fields[0] == name:
                    return int(fields[2])
        return None


_OVERLAY = r'''
set -e
top=$1
shift
for dir in /etc /opt /usr /var; do
    mkdir -p "$top/upper$dir" "$top/work$dir"
    mount -t overlay overlay -o "lowerdir=$dir,upperdir=$top/upper$dir,workdir=$top/work$dir" "$dir"
done
exec "$@"
'''


class OverlaidHost:
    """Commands run on the machine itself, but in a private mount namespace
    where /etc, /opt, /usr and /var are under writable overlays.  Whatever
    a command changes there lands in the overlays' upper directories, which
    therefore list every change (a file or directory made, a whiteout for
    anything removed), and the machine's own directories stay as they were.
    One *top* keeps its overlays from one command to the next."""

    def __init__(self, top):
        self.top = str(top)
        self.upper = os.path.join(self.top, "upper")

    def run(self, argv):
        # In a network namespace of its own too: make install runs ossec-ar
        # adopt, which reads the firewall, never the machine's.
        result = subprocess.run(["unshare", "-n", "-m", "--propagation", "private", "sh", "-c",
                                 _OVERLAY, "sh", self.top] + list(argv),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, universal_newlines=True,
                                timeout=300)
        if result.returncode != 0:
            raise AssertionError("%s exited %d:\n%s" % (argv, result.returncode,
                                                        result.stdout))
        return result

    def changes(self):
        """{path on the machine: 'dir', 'file', 'link' or 'removed'} for
        everything the commands changed under the overlaid directories (a
        directory also appears when something inside it changed)."""
        found = {}
        for directory, dirs, files in os.walk(self.upper):
            if directory == self.upper:
                continue                            # the overlays' own roots
            for name in dirs + files:
                path = os.path.join(directory, name)
                info = os.lstat(path)
                if stat.S_ISCHR(info.st_mode) and info.st_rdev == 0:
                    kind = "removed"                # overlayfs's whiteout
                elif stat.S_ISDIR(info.st_mode):
                    kind = "dir"
                elif stat.S_ISLNK(info.st_mode):
                    kind = "link"
                else:
                    kind = "file"
                found["/" + os.path.relpath(path, self.upper)] = kind
        return found
