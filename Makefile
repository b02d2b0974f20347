# Build and install segura from source (Debian packages follow).
#   make                 build (release)
#   make install         as root: module, binaries, config, the segura user/group, the spool dir
#   make uninstall       remove what install put in place (the spool and config are kept)
# Honours DESTDIR and PREFIX; PROFILE=debug installs the debug build.

PREFIX   ?= /usr/local
DESTDIR  ?=
PROFILE  ?= release
CARGO    ?= cargo
MULTIARCH := $(shell dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
PAMDIR   ?= /lib/$(MULTIARCH)/security
SPOOLDIR ?= /var/lib/segura
SYSCONFDIR ?= /etc/segura
SEGURA_USER ?= segura

ifeq ($(PROFILE),release)
CARGO_PROFILE := --release
else
CARGO_PROFILE :=
endif
TARGET := target/$(PROFILE)

.PHONY: all build install uninstall

all: build

build:
	$(CARGO) build $(CARGO_PROFILE) --locked -p segura -p segura-shell -p pam_segura

install: build
	install -d $(DESTDIR)$(PAMDIR) $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(SYSCONFDIR)
	install -m 0644 $(TARGET)/libpam_segura.so $(DESTDIR)$(PAMDIR)/pam_segura.so
	install -m 0755 $(TARGET)/segura $(DESTDIR)$(PREFIX)/bin/segura
	install -m 0755 $(TARGET)/segura-shell $(DESTDIR)$(PREFIX)/sbin/segura-shell
	test -e $(DESTDIR)$(SYSCONFDIR)/segura.toml || \
		sed -e 's/^# owner = "segura"/owner = "$(SEGURA_USER)"/' -e 's/^# group = "segura"/group = "$(SEGURA_USER)"/' \
		    -e 's|^path = "/var/lib/segura/spool.db"|path = "$(SPOOLDIR)/spool.db"|' \
		    etc/segura.toml > $(DESTDIR)$(SYSCONFDIR)/segura.toml
	chmod 0644 $(DESTDIR)$(SYSCONFDIR)/segura.toml
	install -d -m 0770 $(DESTDIR)$(SPOOLDIR)
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then \
		getent passwd $(SEGURA_USER) >/dev/null || useradd --system --user-group --no-create-home \
			--home-dir $(SPOOLDIR) --shell /usr/sbin/nologin $(SEGURA_USER); \
		chown $(SEGURA_USER):$(SEGURA_USER) $(SPOOLDIR) $(PREFIX)/sbin/segura-shell; \
		chmod 6755 $(PREFIX)/sbin/segura-shell; \
		echo "segura installed; enable it per service with: segura setup --services sshd,login,su"; \
	else \
		echo "staged in $(DESTDIR): as root, create the $(SEGURA_USER) system user, chown $(SEGURA_USER):$(SEGURA_USER) $(SPOOLDIR) and $(PREFIX)/sbin/segura-shell, chmod 6755 the latter"; \
	fi

uninstall:
	rm -f $(DESTDIR)$(PAMDIR)/pam_segura.so $(DESTDIR)$(PREFIX)/bin/segura $(DESTDIR)$(PREFIX)/sbin/segura-shell
	@echo "kept $(DESTDIR)$(SYSCONFDIR) and the recordings in $(DESTDIR)$(SPOOLDIR); remove them by hand if you want them gone"
