# ossec-ar: install, test, benchmark.  See README.md.
PREFIX  ?= /var/ossec
DESTDIR ?=
PYTHON  ?= /usr/bin/python3
# Byte-compiles the package; must be the same Python version as PYTHON, but
# may be another path when building for another system.
COMPILE_PYTHON ?= $(PYTHON)

PROGRAMS := firewall-drop.sh host-deny.sh
PACKAGE  := ossec_ar
MODULES  := $(sort $(wildcard lib/$(PACKAGE)/*.py lib/$(PACKAGE)/*/*.py))
PKGDIRS  := $(sort $(patsubst %/,%,$(dir $(MODULES))))

BINDIR := $(DESTDIR)$(PREFIX)/active-response/bin
LIBDIR := $(DESTDIR)$(PREFIX)/lib

.PHONY: all install uninstall check demo bench clean

all:
	@echo "targets: install uninstall check demo bench (PREFIX=$(PREFIX) PYTHON=$(PYTHON))"

# The prefix and active-response/bin belong to OSSEC: create them if absent,
# never change their modes.  Everything below lib/ossec_ar is ours.  Each
# program is also linked under its name without .sh, which Wazuh agents 4.2
# and later run (with the JSON protocol on stdin).
install:
	mkdir -p $(BINDIR) $(LIBDIR)
	for dir in $(PKGDIRS); do install -d -m 0750 $(DESTDIR)$(PREFIX)/$$dir; done
	for module in $(MODULES); do install -m 0640 $$module $(DESTDIR)$(PREFIX)/$$module; done
	for program in $(PROGRAMS); do \
	  sed '1s|^#!.*|#!$(PYTHON) -IS|' active-response/bin/$$program > $(BINDIR)/.$$program.new && \
	  chmod 0750 $(BINDIR)/.$$program.new && \
	  mv -f $(BINDIR)/.$$program.new $(BINDIR)/$$program && \
	  ln -sfn $$program $(BINDIR)/$${program%.sh} || exit 1; \
	done
	$(COMPILE_PYTHON) -m compileall -q -d $(PREFIX)/lib/$(PACKAGE) $(LIBDIR)/$(PACKAGE)

uninstall:
	for program in $(PROGRAMS); do rm -f $(BINDIR)/$$program $(BINDIR)/$${program%.sh}; done
	for module in $(MODULES); do rm -f $(DESTDIR)$(PREFIX)/$$module; done
	for dir in $(PKGDIRS); do rm -rf $(DESTDIR)$(PREFIX)/$$dir/__pycache__; done
	for dir in $(sort $(PKGDIRS)); do echo $$dir; done | sort -r | \
	  while read dir; do rmdir $(DESTDIR)$(PREFIX)/$$dir 2>/dev/null || true; done

check:
	./tools/check

demo:
	./tools/demo

bench:
	./tools/setup
	.venv/bin/python tools/bench.py

clean:
	rm -rf .venv .pytest_cache build
	find . -name __pycache__ -prune -exec rm -rf {} +
