# depfence: build, test, demo, install.
# Quiet by default; V=1 shows every command.

BUILD ?= build
PREFIX ?= /usr
DESTDIR ?=
VERSION := 0.1.0

CC ?= gcc
CLANG ?= clang
BPFTOOL ?= bpftool
MULTIARCH := $(shell $(CC) -dumpmachine 2>/dev/null)

CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wno-format-truncation -D_GNU_SOURCE -I$(BUILD) -DDF_VERSION='"$(VERSION)"'
LDLIBS := -lbpf -lelf -lz -lyajl -lseccomp
# SAN=1: AddressSanitizer and UndefinedBehaviorSanitizer (make check-sanitize, build/asan)
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer
ifeq ($(SAN),1)
CFLAGS += $(SAN_FLAGS)
endif
BPF_CFLAGS := -g -O2 -target bpf -Wall -Werror -I/usr/include/$(MULTIARCH) -Ibpf

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

HOOK_SRCS := $(wildcard hook/*.c) $(wildcard oci/*.c)
HOOK_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(HOOK_SRCS))
LIB_OBJS := $(filter-out $(BUILD)/obj/hook/main.o,$(HOOK_OBJS))
BPF_SRCS := $(wildcard bpf/*.bpf.c)
SKELS := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRCS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS)) $(BUILD)/tests/test_fuzz_replay
FUZZ_TARGETS := state bundle config rules profile dns
FUZZ_SRCS := $(patsubst %,tests/fuzz/fuzz_%.c,$(FUZZ_TARGETS))
TOOLS := $(BUILD)/tests/dfclient $(BUILD)/tests/dfserver $(BUILD)/tests/dfdns \
	$(BUILD)/tests/dfconnloop $(BUILD)/tests/dfbypass $(BUILD)/tests/dflb $(BUILD)/tests/libdfnoloop.so
# bench tools that load the skeleton: linked with libbpf, not static
BENCH_TOOLS := $(BUILD)/tests/dfverify

.PHONY: all deps check check-unit check-integration check-e2e check-sanitize fuzz demo bench install uninstall clean format

all: $(BUILD)/depfence

$(BUILD)/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.h)
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $*_bpf > $@

# The fence's bpf_loop variant, for kernels with bpf_loop (hook/fence_obj.h):
# the same source, opened through fence.skel.h's layout, so its skeleton must
# declare the same maps, programs and rodata, or the build stops.
$(BUILD)/fence_loop.bpf.o: bpf/fence.bpf.c $(wildcard bpf/*.h)
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -DDF_BPF_LOOP -c $< -o $@

SKEL_LAYOUT = sed -n '/^struct $(1) {/,/^\#ifdef __cplusplus/p' $(BUILD)/$(2).skel.h | sed 's/$(1)/X/g'
$(BUILD)/fence_loop.skel.h: $(BUILD)/fence_loop.bpf.o $(BUILD)/fence.skel.h
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name fence_loop_bpf > $@.tmp && mv $@.tmp $@
	$(Q)$(call SKEL_LAYOUT,fence_bpf,fence) >$@.a; $(call SKEL_LAYOUT,fence_loop_bpf,fence_loop) >$@.b; \
	if ! grep -q rodata $@.a || ! cmp -s $@.a $@.b; then \
		echo "$@: its maps, programs or rodata differ from fence.skel.h's" >&2; rm -f $@ $@.a $@.b; exit 1; fi; \
	rm -f $@.a $@.b
SKELS += $(BUILD)/fence_loop.skel.h

# the fence object's identity (both builds, as the skeletons embed them), for
# the signature of the pool's program sets (hook/pool.h): computed here, not
# hashed again by every hook
$(BUILD)/fence_objid.h: $(BUILD)/fence.bpf.o $(BUILD)/fence_loop.bpf.o
	$(call msg,GEN,$@)
	$(Q)id=$$(cat $^ | sha256sum | cut -d' ' -f1) && [ $${#id} = 64 ] && \
		printf '#define DF_FENCE_OBJ_ID "%s"\n' "$$id" >$@.tmp && mv $@.tmp $@
SKELS += $(BUILD)/fence_objid.h

$(BUILD)/obj/%.o: %.c $(SKELS) $(wildcard hook/*.h oci/*.h bpf/*.h)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/depfence: $(HOOK_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tests/test_%: tests/unit/test_%.c $(wildcard tests/unit/*.h) $(LIB_OBJS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -Itests/unit $< $(LIB_OBJS) $(LDLIBS) -o $@

# The fuzz targets' entry points over the corpora and regressions, without libFuzzer.
$(BUILD)/tests/test_fuzz_replay: tests/fuzz/replay.c $(FUZZ_SRCS) $(wildcard tests/fuzz/*.h) tests/unit/pending_table.h tests/unit/fence_maps.h $(LIB_OBJS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) tests/fuzz/replay.c $(FUZZ_SRCS) $(LIB_OBJS) $(LDLIBS) -o $@

$(BUILD)/tests/dfverify: tests/tools/dfverify.c $(SKELS) hook/fence_obj.h bpf/fence.h
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $< $(LDLIBS) -o $@

# Test clients go into containers too: static, no dependencies.
$(BUILD)/tests/%: tests/tools/%.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(filter-out $(SAN_FLAGS),$(CFLAGS)) -static $< -o $@

# A shim for the tests: a kernel that refuses the bpf_loop build (test_dns).
$(BUILD)/tests/libdfnoloop.so: tests/tools/dfnoloop.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(filter-out $(SAN_FLAGS),$(CFLAGS)) -shared -fPIC $< -ldl -o $@

# The kernel matrix's loader: each program alone, the verifier's verdict and count.
$(BUILD)/tests/dfkload: tests/kernels/dfkload.c $(SKELS) hook/fence_obj.h
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $< $(LDLIBS) -o $@

.PHONY: tests
tests: $(UNIT_BINS) $(TOOLS)

deps:
	$(Q)tests/deps.sh

# The unit tests (the fuzz replay among them) and the integration tests that
# drive the hook and run, built with ASan and UBSan in their own tree.
SAN_BUILD ?= $(BUILD)/asan
SAN_TESTS ?= unit/ integration/test_hook integration/test_run integration/test_cli integration/test_profiles

# everything, then the sanitizer tier, in one run that ends with one count line
check: deps
	$(Q)$(MAKE) --no-print-directory all tests
	$(Q)$(MAKE) --no-print-directory BUILD=$(SAN_BUILD) SAN=1 all tests
	$(Q)BUILD=$(BUILD) SAN_BUILD=$(SAN_BUILD) SAN_TESTS="$(SAN_TESTS)" tests/run.sh

# the sanitizer tier alone
check-sanitize:
	$(Q)$(MAKE) --no-print-directory BUILD=$(SAN_BUILD) SAN=1 all tests
	$(Q)BUILD=$(BUILD) SAN_BUILD=$(SAN_BUILD) SAN_TESTS="$(SAN_TESTS)" SAN_ONLY=1 tests/run.sh

# libFuzzer: every target for FUZZ_SECONDS (default 60), clang with ASan and UBSan.
FUZZ_BUILD := $(BUILD)/fuzz
FUZZ_SECONDS ?= 60
# clang warns in libseccomp's SCMP_A0 macro: -Wno-missing-field-initializers
FUZZ_CFLAGS := -O1 -g -fno-omit-frame-pointer -std=gnu11 -Wall -Wextra -Werror -Wno-missing-field-initializers -D_GNU_SOURCE \
	-I$(BUILD) -DDF_VERSION='"$(VERSION)"' -DDF_LIBFUZZER \
	-fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_LIB_OBJS := $(patsubst $(BUILD)/obj/%,$(FUZZ_BUILD)/obj/%,$(LIB_OBJS))
FUZZ_BINS := $(patsubst %,$(FUZZ_BUILD)/fuzz_%,$(FUZZ_TARGETS))

$(FUZZ_BUILD)/obj/%.o: %.c $(SKELS) $(wildcard hook/*.h oci/*.h bpf/*.h)
	$(call msg,CLANG,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(wildcard tests/fuzz/*.h) tests/unit/pending_table.h tests/unit/fence_maps.h $(FUZZ_LIB_OBJS)
	$(call msg,FUZZER,$@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< $(FUZZ_LIB_OBJS) $(LDLIBS) -o $@

fuzz: deps
	$(Q)$(MAKE) --no-print-directory $(FUZZ_BINS)
	$(Q)FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_BUILD=$(FUZZ_BUILD) tests/fuzz/run.sh $(FUZZ_TARGETS)

check-only: all $(UNIT_BINS) $(TOOLS)
	$(Q)BUILD=$(BUILD) tests/run.sh

# The same build on other kernels (tests/kernels/kernels.list), under qemu.
check-kernels: deps
	$(Q)$(MAKE) --no-print-directory all $(TOOLS) $(BUILD)/tests/test_bpf_dns $(BUILD)/tests/dfkload
	$(Q)BUILD=$(BUILD) tests/kernels/check.sh

# Measurements, not tests: writes tests/bench/RESULTS.md and results.json.
bench:
	$(Q)tests/deps.sh bench
	$(Q)$(MAKE) --no-print-directory all $(TOOLS) $(BENCH_TOOLS)
	$(Q)BUILD=$(BUILD) tests/bench/bench.sh

demo: deps
	$(Q)$(MAKE) --no-print-directory all tests
	$(Q)examples/deploy/demo.sh

# PREFIX=/usr: podman and CRI-O read hooks.d only under /usr/share and /etc
SYSCONFDIR ?= /etc
HOOKSDIR ?= $(PREFIX)/share/containers/oci/hooks.d
LIBEXECDIR ?= $(PREFIX)/libexec/oci/hooks.d
MANDIR ?= $(PREFIX)/share/man
MANPAGES := hook/man/depfence.1 hook/man/depfence-policy.5

install: all
	install -D -m 0755 $(BUILD)/depfence $(DESTDIR)$(PREFIX)/bin/depfence
	install -D -m 0755 $(BUILD)/depfence $(DESTDIR)$(LIBEXECDIR)/depfence
	install -d -m 0755 $(DESTDIR)$(HOOKSDIR)
	for f in examples/hooks.d/*.json; do \
		sed 's|"/usr/libexec/oci/hooks.d/depfence"|"$(LIBEXECDIR)/depfence"|' $$f \
			>$(DESTDIR)$(HOOKSDIR)/$$(basename $$f) && chmod 0644 $(DESTDIR)$(HOOKSDIR)/$$(basename $$f); \
	done
	for m in $(MANPAGES); do \
		install -D -m 0644 $$m $(DESTDIR)$(MANDIR)/man$${m##*.}/$$(basename $$m); \
	done
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/depfence/profiles
	# the admin's config is never overwritten
	[ -e $(DESTDIR)$(SYSCONFDIR)/depfence/depfence.json ] || \
		install -m 0644 examples/config/depfence.json $(DESTDIR)$(SYSCONFDIR)/depfence/depfence.json

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/depfence $(DESTDIR)$(LIBEXECDIR)/depfence
	rm -f $(addprefix $(DESTDIR)$(HOOKSDIR)/,$(notdir $(wildcard examples/hooks.d/*.json)))
	rm -f $(DESTDIR)$(MANDIR)/man1/depfence.1 $(DESTDIR)$(MANDIR)/man5/depfence-policy.5
	@echo "kept $(DESTDIR)$(SYSCONFDIR)/depfence (the admin's configuration and profiles)"

# without a .clang-format here, clang-format would look in the directories
# above and fall back to its own default style: the whole tree rewritten
format:
	@test -f .clang-format || { echo "make format: no .clang-format in $(CURDIR): refusing to reformat the tree in clang-format's default style" >&2; exit 1; }
	clang-format -i bpf/*.c bpf/*.h hook/*.c hook/*.h oci/*.c oci/*.h tests/unit/*.c tests/tools/*.c \
		tests/fuzz/*.c tests/fuzz/*.h

clean:
	rm -rf $(BUILD)

# skeletons and BPF objects are kept: hook objects depend on them
.SECONDARY: $(SKELS) $(patsubst bpf/%.bpf.c,$(BUILD)/%.bpf.o,$(BPF_SRCS)) $(FUZZ_LIB_OBJS)

.DELETE_ON_ERROR:
