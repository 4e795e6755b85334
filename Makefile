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
PACKAGE  := ossec_ar
MODULES  := $(sort $(wildcard lib/$(PACKAGE)/*.py lib/$(PACKAGE)/*/*.py))
PKGDIRS  := $(sort $(patsubst %/,%,$(dir $(MODULES))))
MANPAGES := firewall-drop.sh.8 host-deny.sh.8
RULES    := ossec-ar_decoders.xml ossec-ar_rules.xml
# Examples shipped disabled: expiring stale blocks from systemd or cron.
EXAMPLES := ossec-ar-expire.service ossec-ar-expire.timer ossec-ar-expire.cron
# With the default PREFIX, the agent's home, the manual pages and the shared
# files (decoder, rules, examples) go to the system's /usr/share, where the
# packages put them.  Any other PREFIX keeps them under itself, so that a
# scratch install touches nothing outside its prefix.
ifeq ($(PREFIX),/var/ossec)
MANDIR   ?= /usr/share/man
DATADIR  ?= /usr/share/ossec-ar
else
MANDIR   ?= $(PREFIX)/share/man
DATADIR  ?= $(PREFIX)/share/ossec-ar
endif

# The version's one source.  Each package's changelog names it in its latest
# entry, and make deb and make rpm refuse to build when one does not.
VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"$$/\1/p' lib/$(PACKAGE)/__init__.py)
BUILD   := build
# What the packages are built from: the installable files, nothing else.
SOURCES := Makefile README.md active-response bin examples lib man rules
# The interpreter of the RPM's shebang (RHEL 8: /usr/libexec/platform-python).
RPM_PYTHON ?= /usr/bin/python3
# The RPM's release of this version (the packaging's own revision).
RPM_RELEASE := 1

BINDIR := $(DESTDIR)$(PREFIX)/active-response/bin
LIBDIR := $(DESTDIR)$(PREFIX)/lib
STOCKNAMES := $(COMPILE_PYTHON) -I $(LIBDIR)/$(PACKAGE)/stocknames.py

# The directories install needs.  Those missing before it (parents included)
# are listed in RECORD, merged with an earlier install's list, and uninstall
# removes just those, once empty: never a directory that was there before,
# nor one that holds someone else's files.  The packages leave the record
# out (UNINSTALL_RECORD=no): their package manager owns their directories.
DIRS   := $(PREFIX)/active-response/bin $(PREFIX)/bin $(addprefix $(PREFIX)/,$(PKGDIRS)) \
          $(MANDIR)/man8 $(DATADIR)
RECORD := $(LIBDIR)/$(PACKAGE)/installed-dirs
UNINSTALL_RECORD ?= yes

.PHONY: all install uninstall check demo bench deb rpm version-check clean

all:
	@echo "targets: install uninstall check demo bench deb rpm (PREFIX=$(PREFIX) PYTHON=$(PYTHON))"

# The prefix and active-response/bin belong to OSSEC: create them if absent,
# never change their modes.  Everything below lib/ossec_ar is ours.
install:
	missing=$$(for dir in $(DIRS); do \
	  while [ "$$dir" != / ] && [ ! -d "$(DESTDIR)$$dir" ]; do \
	    echo "$$dir" && dir=$$(dirname "$$dir"); done; done) && \
	mkdir -p $(BINDIR) $(LIBDIR) && \
	for dir in $(PKGDIRS); do install -d -m 0755 $(DESTDIR)$(PREFIX)/$$dir || exit 1; done && \
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DATADIR) && \
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

# First, our blocks go to the forms that the stock scripts coming back lift
# (or are lifted), and our firewall layouts are removed: ossec-ar hand-over
# (README, "Removing ossec-ar").  If that fails, nothing is uninstalled.
uninstall:
	if [ -x $(DESTDIR)$(PREFIX)/bin/ossec-ar ]; then $(DESTDIR)$(PREFIX)/bin/ossec-ar hand-over; fi
	if [ -f $(LIBDIR)/$(PACKAGE)/stocknames.py ]; then $(STOCKNAMES) restore $(BINDIR); fi
	for pair in $(PROGRAMS); do rm -f $(BINDIR)/$${pair##*:}; done
	rm -f $(DESTDIR)$(PREFIX)/bin/ossec-ar
	for module in $(MODULES); do rm -f $(DESTDIR)$(PREFIX)/$$module; done
	for dir in $(PKGDIRS); do rm -rf $(DESTDIR)$(PREFIX)/$$dir/__pycache__; done
	for page in $(MANPAGES); do rm -f $(DESTDIR)$(MANDIR)/man8/$$page.gz; done
	for file in $(RULES) $(EXAMPLES); do rm -f $(DESTDIR)$(DATADIR)/$$file; done
	made=$$(if [ -f $(RECORD) ]; then cat $(RECORD); fi) && rm -f $(RECORD) && \
	for dir in $(addprefix $(PREFIX)/,$(PKGDIRS)) $$made; do echo "$$dir"; done | sort -ru | \
	  while read dir; do rmdir "$(DESTDIR)$$dir" 2>/dev/null || true; done

# Both packages land in build/.
deb: version-check
	rm -rf $(BUILD)/deb && mkdir -p $(BUILD)/deb/ossec-ar-$(VERSION)
	tar --exclude=__pycache__ -cf - $(SOURCES) | tar -xf - -C $(BUILD)/deb/ossec-ar-$(VERSION)
	cp -r packaging/debian $(BUILD)/deb/ossec-ar-$(VERSION)/debian
	cd $(BUILD)/deb/ossec-ar-$(VERSION) && dpkg-buildpackage -b -us -uc -tc
	cp $(BUILD)/deb/ossec-ar_$(VERSION)_all.deb $(BUILD)/

rpm: version-check
	rm -rf $(BUILD)/rpm && mkdir -p $(BUILD)/rpm/SOURCES
	tar --exclude=__pycache__ --transform 's,^,ossec-ar-$(VERSION)/,' \
	  -czf $(BUILD)/rpm/SOURCES/ossec-ar-$(VERSION).tar.gz $(SOURCES)
	rpmbuild -bb --nodeps --define "_topdir $(abspath $(BUILD)/rpm)" \
	  --define "ossec_ar_version $(VERSION)" --define "ossec_python $(RPM_PYTHON)" \
	  --define "ossec_ar_release $(RPM_RELEASE)" \
	  --define "compile_python $(COMPILE_PYTHON)" packaging/ossec-ar.spec
	cp $(BUILD)/rpm/RPMS/noarch/ossec-ar-$(VERSION)-$(RPM_RELEASE).noarch.rpm $(BUILD)/

# The files that name the version must name VERSION: the latest entry of
# each package's changelog, and the manual pages.  The packages are not
# built until they do.
version-check:
	@fail=0; where="the version is '$(VERSION)' (lib/$(PACKAGE)/__init__.py)"; \
	deb=$$(dpkg-parsechangelog -l packaging/debian/changelog -S Version); \
	rpm=$$(sed -n '/^%changelog/,$$ s/^\* .* - \([^ ]*\)$$/\1/p' packaging/ossec-ar.spec | \
	  head -n 1); \
	if [ -z "$(VERSION)" ] || [ "$$deb" != "$(VERSION)" ]; then fail=1; \
	  echo "packaging/debian/changelog: the latest entry is $$deb, $$where" >&2; fi; \
	if [ -z "$(VERSION)" ] || [ "$$rpm" != "$(VERSION)-$(RPM_RELEASE)" ]; then fail=1; \
	  echo "packaging/ossec-ar.spec: the latest %changelog entry is $$rpm," \
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
