# ossec-ar: install, test, benchmark.  See README.md.
PREFIX  ?= /var/ossec
DESTDIR ?=
PYTHON  ?= /usr/bin/python3
# Byte-compiles the package; must be the same Python version as PYTHON, but
# may be another path when building for another system.
COMPILE_PYTHON ?= $(PYTHON)

# Source file -> installed name.  The names that execd runs (firewall-drop.sh,
# host-deny.sh, route-null, pf.sh...) are links to these, made by
# lib/ossec_ar/stocknames.py, which holds the one list of the names and keeps
# a stock file found under one as <name>.stock.  STOCK_LINKS=no leaves the
# names alone (the RPM makes the links in its scriptlets: the agent's package
# owns them).
PROGRAMS := firewall-drop.sh:ossec-ar-firewall-drop host-deny.sh:ossec-ar-host-deny \
            unblock.sh:ossec-ar-unblock
STOCK_LINKS ?= yes
# BYTECOMPILE=no leaves the byte-code to the .deb's postinst.
BYTECOMPILE ?= yes
# ossec-ar adopt: the stock scripts' blocks there at install become ours, so
# that their deletes lift them (once per installation).  Not into a staging
# DESTDIR, whose firewall is not the target's: the packages run it.
ADOPT ?= $(if $(DESTDIR),no,yes)
PACKAGE  := ossec_ar
MODULES  := $(sort $(wildcard lib/$(PACKAGE)/*.py lib/$(PACKAGE)/*/*.py))
PKGDIRS  := $(sort $(patsubst %/,%,$(dir $(MODULES))))
MANPAGES := firewall-drop.sh.8 host-deny.sh.8 ossec-ar.8
# ossec-ar's bash completion, installed under the command's name, where
# bash-completion loads it from when the command is first completed.
COMPLETION := completion/ossec-ar.bash
RULES    := ossec-ar_decoders.xml ossec-ar_rules.xml
# Examples shipped disabled: expiring stale blocks, and writing the metrics
# for node_exporter, from systemd or cron; and the unit that restores blocks
# after a firewall reload, which the packages also install in UNITDIR
# (systemd's own directory) and enable.
EXAMPLES := ossec-ar-expire.service ossec-ar-expire.timer ossec-ar-expire.cron \
            ossec-ar-metrics.service ossec-ar-metrics.timer ossec-ar-metrics.cron \
            ossec-ar-restore.service
RELOAD_UNIT := ossec-ar-restore.service
UNITDIR  ?=
# With the default PREFIX, the agent's home, the manual pages and the shared
# files (decoder, rules, examples) go to the system's /usr/share, where the
# packages put them.  Any other PREFIX keeps them under itself, so that a
# scratch install touches nothing outside its prefix.
ifeq ($(PREFIX),/var/ossec)
MANDIR   ?= /usr/share/man
DATADIR  ?= /usr/share/ossec-ar
COMPLETIONDIR ?= /usr/share/bash-completion/completions
else
MANDIR   ?= $(PREFIX)/share/man
DATADIR  ?= $(PREFIX)/share/ossec-ar
COMPLETIONDIR ?= $(PREFIX)/share/bash-completion/completions
endif

# The version's one source.  The spec's Version and each package's
# changelog name it in its latest entry, and make dist, deb and rpm refuse
# to build when one does not.
VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"$$/\1/p' lib/$(PACKAGE)/__init__.py)
SPEC    := packaging/ossec-ar.spec
BUILD   := build
# What the packages are built from: the installable files, the licence and
# the documentation, nothing else.
SOURCES := COPYING Makefile README.md active-response bin completion docs examples lib man \
           rules
# make dist: the source tarball, with them and the packaging, in one
# directory ossec-ar-<version>/; the .deb and the .rpm are built from it.
DIST    := $(BUILD)/ossec-ar-$(VERSION).tar.gz
# The interpreter of the RPM's shebang (RHEL 8: /usr/libexec/platform-python),
# the only one its byte-code is for.  It byte-compiles too, unless
# COMPILE_PYTHON is given (the same Python version, at another path).
RPM_PYTHON ?= /usr/bin/python3
RPM_COMPILE := $(if $(filter command line environment,$(origin COMPILE_PYTHON)), \
                 --define "compile_python $(COMPILE_PYTHON)")
# The RPM's release of this version (the packaging's own revision): the spec's.
RPM_RELEASE := $(shell sed -n 's/^Release: *\([^ ]*\) *$$/\1/p' $(SPEC))

BINDIR := $(DESTDIR)$(PREFIX)/active-response/bin
LIBDIR := $(DESTDIR)$(PREFIX)/lib
STOCKNAMES := $(COMPILE_PYTHON) -I $(LIBDIR)/$(PACKAGE)/stocknames.py

# The directories install needs.  Those missing before it (parents included)
# are listed in RECORD, merged with an earlier install's list, and uninstall
# removes just those, once empty: never a directory that was there before,
# nor one that holds someone else's files.  The packages leave the record
# out (UNINSTALL_RECORD=no): their package manager owns their directories.
DIRS   := $(PREFIX)/active-response/bin $(PREFIX)/bin $(addprefix $(PREFIX)/,$(PKGDIRS)) \
          $(MANDIR)/man8 $(DATADIR) $(COMPLETIONDIR)
RECORD := $(LIBDIR)/$(PACKAGE)/installed-dirs
UNINSTALL_RECORD ?= yes

.PHONY: all install uninstall check demo bench dist deb rpm version-check clean

all:
	@echo "targets: install uninstall check demo bench dist deb rpm version-check" \
	  "(PREFIX=$(PREFIX) PYTHON=$(PYTHON))"

# The prefix and active-response/bin belong to OSSEC: create them if absent,
# never change their modes.  Everything below lib/ossec_ar is ours.
install:
	missing=$$(for dir in $(DIRS); do \
	  while [ "$$dir" != / ] && [ ! -d "$(DESTDIR)$$dir" ]; do \
	    echo "$$dir" && dir=$$(dirname "$$dir"); done; done) && \
	mkdir -p $(BINDIR) $(LIBDIR) && \
	for dir in $(PKGDIRS); do install -d -m 0755 $(DESTDIR)$(PREFIX)/$$dir || exit 1; done && \
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DATADIR) \
	  $(DESTDIR)$(COMPLETIONDIR) && \
	if [ "$(UNINSTALL_RECORD)" = yes ]; then \
	  { if [ -f $(RECORD) ]; then cat $(RECORD); fi; \
	    for dir in $$missing; do echo "$$dir"; done; } | sort -u > $(RECORD).new && \
	  chmod 0644 $(RECORD).new && mv -f $(RECORD).new $(RECORD); fi
	for module in $(MODULES); do install -m 0644 $$module $(DESTDIR)$(PREFIX)/$$module; done
	for pair in $(PROGRAMS); do \
	  source=$${pair%%:*} name=$${pair##*:} && \
	  sed '1s|^#!.*|#!$(PYTHON) -IS|' active-response/bin/$$source > $(BINDIR)/.$$name.new && \
	  chmod 0750 $(BINDIR)/.$$name.new && \
	  mv -f $(BINDIR)/.$$name.new $(BINDIR)/$$name || exit 1; \
	done
	sed '1s|^#!.*|#!$(PYTHON) -IS|' bin/ossec-ar > $(DESTDIR)$(PREFIX)/bin/.ossec-ar.new
	chmod 0750 $(DESTDIR)$(PREFIX)/bin/.ossec-ar.new
	mv -f $(DESTDIR)$(PREFIX)/bin/.ossec-ar.new $(DESTDIR)$(PREFIX)/bin/ossec-ar
	if [ "$(BYTECOMPILE)" = yes ]; then \
	  $(COMPILE_PYTHON) -m compileall -q -d $(PREFIX)/lib/$(PACKAGE) $(LIBDIR)/$(PACKAGE); fi
	if [ "$(STOCK_LINKS)" = yes ]; then $(STOCKNAMES) link $(BINDIR); fi
	for page in $(MANPAGES); do \
	  gzip -9n < man/$$page > $(DESTDIR)$(MANDIR)/man8/$$page.gz && \
	  chmod 0644 $(DESTDIR)$(MANDIR)/man8/$$page.gz || exit 1; \
	done
	for file in $(RULES); do install -m 0644 rules/$$file $(DESTDIR)$(DATADIR)/$$file; done
	for file in $(EXAMPLES); do install -m 0644 examples/$$file $(DESTDIR)$(DATADIR)/$$file; done
	install -m 0644 $(COMPLETION) $(DESTDIR)$(COMPLETIONDIR)/ossec-ar
	if [ -n "$(UNITDIR)" ]; then install -d $(DESTDIR)$(UNITDIR) && \
	  install -m 0644 examples/$(RELOAD_UNIT) $(DESTDIR)$(UNITDIR)/$(RELOAD_UNIT); fi
	if [ "$(ADOPT)" = yes ]; then $(DESTDIR)$(PREFIX)/bin/ossec-ar adopt >/dev/null || \
	  echo "ossec-ar: warning: the stock scripts' blocks were not adopted (see" \
	    "$(PREFIX)/logs/active-responses.log): run ossec-ar adopt" >&2; fi

# First, our blocks go to the forms that the stock scripts coming back lift
# (or are lifted), and our firewall layouts are removed: ossec-ar hand-over
# (README, "Removing ossec-ar").  If that fails, nothing is uninstalled.
uninstall:
	if [ -x $(DESTDIR)$(PREFIX)/bin/ossec-ar ]; then $(DESTDIR)$(PREFIX)/bin/ossec-ar hand-over; fi
	if [ -f $(LIBDIR)/$(PACKAGE)/stocknames.py ]; then $(STOCKNAMES) restore $(BINDIR); fi
	# Our state (ledgers, locks, the adoption's mark): its blocks were handed
	# over above, and an install after this adopts them anew.
	rm -rf $(DESTDIR)$(PREFIX)/var/ossec-ar
	rmdir $(DESTDIR)$(PREFIX)/var 2>/dev/null || true
	for pair in $(PROGRAMS); do rm -f $(BINDIR)/$${pair##*:}; done
	rm -f $(DESTDIR)$(PREFIX)/bin/ossec-ar
	for module in $(MODULES); do rm -f $(DESTDIR)$(PREFIX)/$$module; done
	for dir in $(PKGDIRS); do rm -rf $(DESTDIR)$(PREFIX)/$$dir/__pycache__; done
	for page in $(MANPAGES); do rm -f $(DESTDIR)$(MANDIR)/man8/$$page.gz; done
	for file in $(RULES) $(EXAMPLES); do rm -f $(DESTDIR)$(DATADIR)/$$file; done
	rm -f $(DESTDIR)$(COMPLETIONDIR)/ossec-ar
	if [ -n "$(UNITDIR)" ]; then rm -f $(DESTDIR)$(UNITDIR)/$(RELOAD_UNIT); fi
	made=$$(if [ -f $(RECORD) ]; then cat $(RECORD); fi) && rm -f $(RECORD) && \
	for dir in $(addprefix $(PREFIX)/,$(PKGDIRS)) $$made; do echo "$$dir"; done | sort -ru | \
	  while read dir; do rmdir "$(DESTDIR)$$dir" 2>/dev/null || true; done

# The tarball, and both packages, land in build/.  Files are stored as
# root:root in name order, so the same tree makes the same tarball.
dist: version-check
	mkdir -p $(BUILD)
	tar --exclude=__pycache__ --sort=name --owner=0 --group=0 --numeric-owner \
	  --transform 's,^,ossec-ar-$(VERSION)/,' -cf - $(SOURCES) packaging | \
	  gzip -9n > $(DIST).new
	mv -f $(DIST).new $(DIST)

deb: dist
	rm -rf $(BUILD)/deb && mkdir -p $(BUILD)/deb
	tar -xzf $(DIST) -C $(BUILD)/deb
	cp -r $(BUILD)/deb/ossec-ar-$(VERSION)/packaging/debian $(BUILD)/deb/ossec-ar-$(VERSION)/debian
	cd $(BUILD)/deb/ossec-ar-$(VERSION) && dpkg-buildpackage -b -us -uc -tc
	cp $(BUILD)/deb/ossec-ar_$(VERSION)_all.deb $(BUILD)/

# The spec alone, from the tarball, as rpmbuild -ba would build it anywhere;
# only the shebang's interpreter is chosen here.  --nodeps: the build
# machine need not be an RPM system.
rpm: dist
	rm -rf $(BUILD)/rpm && mkdir -p $(BUILD)/rpm
	rpmbuild -ba --nodeps --define "_topdir $(abspath $(BUILD)/rpm)" \
	  --define "_sourcedir $(abspath $(BUILD))" \
	  --define "ossec_python $(RPM_PYTHON)" $(RPM_COMPILE) $(SPEC)
	cp $(BUILD)/rpm/RPMS/noarch/ossec-ar-$(VERSION)-$(RPM_RELEASE).noarch.rpm \
	  $(BUILD)/rpm/SRPMS/ossec-ar-$(VERSION)-$(RPM_RELEASE).src.rpm $(BUILD)/

# The files that name the version must name VERSION: the spec's Version,
# the latest entry of each package's changelog, and the manual pages.  No
# tarball or package is made until they do.  (sed, not dpkg-parsechangelog:
# an RPM system has no dpkg.)
version-check:
	@fail=0; where="the version is '$(VERSION)' (lib/$(PACKAGE)/__init__.py)"; \
	spec=$$(sed -n 's/^Version: *\([^ ]*\) *$$/\1/p' $(SPEC)); \
	deb=$$(sed -n '1s/^ossec-ar (\([^)]*\)).*/\1/p' packaging/debian/changelog); \
	rpm=$$(sed -n '/^%changelog/,$$ s/^\* .* - \([^ ]*\)$$/\1/p' $(SPEC) | head -n 1); \
	if [ -z "$(VERSION)" ] || [ "$$spec" != "$(VERSION)" ]; then fail=1; \
	  echo "$(SPEC): Version is $$spec, $$where" >&2; fi; \
	if [ -z "$(VERSION)" ] || [ "$$deb" != "$(VERSION)" ]; then fail=1; \
	  echo "packaging/debian/changelog: the latest entry is $$deb, $$where" >&2; fi; \
	if [ -z "$(VERSION)" ] || [ "$$rpm" != "$(VERSION)-$(RPM_RELEASE)" ]; then fail=1; \
	  echo "$(SPEC): the latest %changelog entry is $$rpm," \
	    "$$where and the release $(RPM_RELEASE)" >&2; fi; \
	for page in $(MANPAGES); do \
	  if ! grep -m 1 '^\.TH ' man/$$page | grep -qF '"ossec-ar $(VERSION)"'; then fail=1; \
	    echo "man/$$page: its .TH line does not name ossec-ar $(VERSION), $$where" >&2; fi; \
	done; \
	exit $$fail

check:
	./tools/check

demo:
	./tools/demo

# Options for tools/bench.py, e.g. make bench BENCH="--no-scale --no-firewalld".
BENCH ?=
bench:
	./tools/setup
	.venv/bin/python tools/bench.py $(BENCH)

clean:
	rm -rf .venv .pytest_cache build
	find . -name __pycache__ -prune -exec rm -rf {} +
