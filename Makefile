# plan - GNU make build.  `make` builds build/plan and build/plan-registry.
# Every library comes through pkg-config; `make deps` installs what is missing.

ifeq ($(origin CC),default)
CC := gcc
endif
PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build

PKGS     := sqlite3 libsodium libarchive jansson libcurl libfyaml libzstd
CPPFLAGS += -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -I.
CFLAGS   ?= -O2 -g
override CFLAGS += -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -pthread \
            $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libcurl is compiled against but not linked: fetch/ loads it on first use
# (fetch/curl_api.h says why).
LDLIBS   += $(shell pkg-config --libs $(filter-out libcurl,$(PKGS)) 2>/dev/null) -pthread
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

LIB_MODULES := common store resolver fetch recipes
LIB_SRC  := $(foreach m,$(LIB_MODULES),$(wildcard $(m)/*.c))
CLI_SRC  := $(wildcard cli/*.c)
REG_SRC  := $(wildcard registry-server/*.c)
UNIT_SRC := $(wildcard tests/unit/*.c)
TOOL_SRC := $(wildcard tests/tools/*.c)

obj = $(patsubst %.c,$(1)/obj/%.o,$(2))

.PHONY: all deps test unit tools asan bench run install clean

all: $(BUILD)/plan $(BUILD)/plan-registry

# ---- the normal build ----
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libplan.a: $(call obj,$(BUILD),$(LIB_SRC))
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/plan: $(call obj,$(BUILD),$(CLI_SRC)) $(BUILD)/libplan.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# The server alone links libmicrohttpd.
MHD_CFLAGS := $(shell pkg-config --cflags libmicrohttpd 2>/dev/null)
MHD_LIBS   := $(shell pkg-config --libs libmicrohttpd 2>/dev/null)
$(call obj,$(BUILD),$(REG_SRC)): CPPFLAGS += $(MHD_CFLAGS)
$(BUILD)/plan-registry: $(call obj,$(BUILD),$(REG_SRC)) $(BUILD)/libplan.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) $(MHD_LIBS)

# Unit tests: one binary per tests/unit/<module>_<topic>.c, linked with cmocka.
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libplan.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(shell pkg-config --cflags cmocka) -o $@ $^ \
	    $(LDLIBS) $(shell pkg-config --libs cmocka)

TOOL_BINS := $(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(TOOL_SRC))
$(BUILD)/tools/%: tests/tools/%.c $(BUILD)/libplan.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(shell pkg-config --cflags libmicrohttpd) -o $@ $^ $(LDLIBS) \
	    $(shell pkg-config --libs libmicrohttpd)

# ---- the sanitizer build: same sources, ASan + UBSan, in build/asan ----
ASAN := $(BUILD)/asan
asan:
	$(MAKE) BUILD=$(ASAN) CFLAGS="-O1 -g $(SAN_FLAGS)" LDFLAGS="$(SAN_FLAGS)" \
	    $(ASAN)/plan $(ASAN)/plan-registry $(patsubst $(BUILD)/%,$(ASAN)/%,$(UNIT_BINS))

unit: $(UNIT_BINS)
tools: $(TOOL_BINS)

deps:
	@tools/deps.sh

test: deps
	@$(MAKE) --no-print-directory all unit tools asan
	@tests/run.sh $(BUILD)

# deps may install the libraries, so the build runs in a fresh make that
# asks pkg-config again.
bench: deps
	@tools/deps.sh --bench
	@$(MAKE) --no-print-directory all
	@bench/run.sh $(BUILD)
	@bench/solver/run.sh $(BUILD)
	@bench/build.sh $(BUILD)
	@bench/env.sh $(BUILD)
	@bench/registry.sh $(BUILD)

run: deps
	@$(MAKE) --no-print-directory all
	@examples/run.sh $(BUILD)

# Fuzz the parsers with libFuzzer (clang, libclang-rt-14-dev): each target
# in tests/fuzz runs for FUZZ_SECONDS; corpora grow in $(BUILD)/fuzz/<target>
# between runs and start from the seeds in tests/fuzz/seeds/<target>.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := semver recipe
FUZZ_LIBS := $(shell pkg-config --libs libfyaml libsodium 2>/dev/null)
FUZZ_SRC_semver := resolver/semver.c resolver/range.c
FUZZ_SRC_recipe := recipes/recipe.c recipes/versions.c resolver/semver.c resolver/range.c \
                   resolver/solver.c resolver/explain.c resolver/index.c store/hash.c
.PHONY: fuzz
fuzz:
	@command -v clang >/dev/null || { echo "plan: fuzz needs clang: apt-get install -y clang libclang-rt-14-dev" >&2; exit 1; }
	@set -e; for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(BUILD)/fuzz/$$t; \
	    cp tests/fuzz/seeds/$$t/* $(BUILD)/fuzz/$$t/ 2>/dev/null || true; \
	    case $$t in semver) src="$(FUZZ_SRC_semver)";; recipe) src="$(FUZZ_SRC_recipe)";; esac; \
	    echo "plan: fuzzing $$t for $(FUZZ_SECONDS) s"; \
	    clang $(CPPFLAGS) -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined \
	        -fno-sanitize-recover=all -o $(BUILD)/fuzz/$$t.bin tests/fuzz/$${t}_fuzz.c \
	        $$src $(wildcard common/*.c) $(FUZZ_LIBS) -pthread; \
	    $(BUILD)/fuzz/$$t.bin -max_total_time=$(FUZZ_SECONDS) -max_len=8192 -timeout=5 \
	        -artifact_prefix=$(BUILD)/fuzz/ $(BUILD)/fuzz/$$t; \
	done

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/doc/plan
	install -m 0755 $(BUILD)/plan $(BUILD)/plan-registry $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/plan/
	cp -R docs/. $(DESTDIR)$(PREFIX)/share/doc/plan/

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
