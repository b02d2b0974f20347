# Build and install segura from source (Debian packages: scripts/deb.sh).
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

.PHONY: all build install uninstall install-ffi uninstall-ffi

all: build

build:
	$(CARGO) build $(CARGO_PROFILE) --locked -p segura -p segura-shell -p segura-launch -p pam_segura

install: build
	install -d $(DESTDIR)$(PAMDIR) $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(SYSCONFDIR)
	install -m 0644 $(TARGET)/libpam_segura.so $(DESTDIR)$(PAMDIR)/pam_segura.so
	install -m 0755 $(TARGET)/segura $(DESTDIR)$(PREFIX)/bin/segura
	install -m 0755 $(TARGET)/segura-shell $(DESTDIR)$(PREFIX)/sbin/segura-shell
	install -m 0755 $(TARGET)/segura-launch $(DESTDIR)$(PREFIX)/sbin/segura-launch
	test -e $(DESTDIR)$(SYSCONFDIR)/segura.toml || \
		sed -e 's/^# owner = "segura"/owner = "$(SEGURA_USER)"/' -e 's/^# group = "segura"/group = "$(SEGURA_USER)"/' \
		    -e 's|^path = "/var/lib/segura/spool.db"|path = "$(SPOOLDIR)/spool.db"|' \
		    etc/segura.toml > $(DESTDIR)$(SYSCONFDIR)/segura.toml
	chmod 0644 $(DESTDIR)$(SYSCONFDIR)/segura.toml
	install -d -m 0770 $(DESTDIR)$(SPOOLDIR)
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then \
		getent passwd $(SEGURA_USER) >/dev/null || useradd --system --user-group --no-create-home \
			--home-dir $(SPOOLDIR) --shell /usr/sbin/nologin $(SEGURA_USER); \
		chown $(SEGURA_USER):$(SEGURA_USER) $(SPOOLDIR) $(PREFIX)/sbin/segura-shell $(PREFIX)/sbin/segura-launch; \
		chmod 6755 $(PREFIX)/sbin/segura-shell $(PREFIX)/sbin/segura-launch; \
		echo "segura installed; enable it per service with: segura setup --services sshd,login,su"; \
	else \
		echo "staged in $(DESTDIR): as root, create the $(SEGURA_USER) system user, chown $(SEGURA_USER):$(SEGURA_USER) $(SPOOLDIR), $(PREFIX)/sbin/segura-shell and segura-launch, chmod 6755 the last two"; \
	fi

# The C ABI: libsegura.so.0 (+ the libsegura.so link), libsegura.a, segura.h and segura.pc.
install-ffi:
	$(CARGO) build $(CARGO_PROFILE) --locked -p segura-ffi
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 0755 $(TARGET)/libsegura.so $(DESTDIR)$(PREFIX)/lib/libsegura.so.0
	ln -sf libsegura.so.0 $(DESTDIR)$(PREFIX)/lib/libsegura.so
	install -m 0644 $(TARGET)/libsegura.a $(DESTDIR)$(PREFIX)/lib/libsegura.a
	install -m 0644 ffi/segura.h $(DESTDIR)$(PREFIX)/include/segura.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e "s|@VERSION@|$$(sed -n 's/^version = \"\(.*\)\"/\1/p' Cargo.toml | head -1)|" \
		ffi/segura.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/segura.pc

uninstall-ffi:
	rm -f $(DESTDIR)$(PREFIX)/lib/libsegura.so.0 $(DESTDIR)$(PREFIX)/lib/libsegura.so $(DESTDIR)$(PREFIX)/lib/libsegura.a \
		$(DESTDIR)$(PREFIX)/include/segura.h $(DESTDIR)$(PREFIX)/lib/pkgconfig/segura.pc

uninstall:
	rm -f $(DESTDIR)$(PAMDIR)/pam_segura.so $(DESTDIR)$(PREFIX)/bin/segura $(DESTDIR)$(PREFIX)/sbin/segura-shell \
		$(DESTDIR)$(PREFIX)/sbin/segura-launch
	@echo "kept $(DESTDIR)$(SYSCONFDIR) and the recordings in $(DESTDIR)$(SPOOLDIR); remove them by hand if you want them gone"
