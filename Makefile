# Thin wrapper: the README's two commands are `make run` and `make test`.
# Each installs what is missing (scripts/bootstrap) and builds what it needs.

BUILD_RELEASE := build/release
BUILD_ASAN    := build/asan
BUILD_FUZZ    := build/fuzz
JOBS          ?= $(shell nproc)
FUZZ_SECONDS  ?= 20
FUZZ_LONG_SECONDS ?= 300

.PHONY: run test build build-asan unit integration fuzz-smoke fuzz format lint clean bootstrap test-tools

bootstrap:
	@scripts/bootstrap

# The real Kubernetes parts of the Kubernetes tests: kube-apiserver, etcd, kubectl
# (docs/testing.md). Never skipped: without them those tests fail.
# What only the tests need: the Kubernetes API server, etcd and kubectl, and the
# Node packages of the sink-authentication tests (build/node). `make run` needs none.
test-tools: bootstrap
	@scripts/kube-tools
	@scripts/test-node

build: bootstrap
	@cmake -S . -B $(BUILD_RELEASE) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DJB_TESTS=OFF >/dev/null
	@cmake --build $(BUILD_RELEASE) -j $(JOBS)

# Only what `run` needs (the binary and the example sink), without make's
# "Entering directory" lines from cmake's own make.
run: bootstrap
	@cmake -S . -B $(BUILD_RELEASE) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DJB_TESTS=OFF >/dev/null
	@MAKEFLAGS= cmake --build $(BUILD_RELEASE) -j $(JOBS) --target jetbridge sink -- --no-print-directory
	@scripts/run-local $(BUILD_RELEASE)

build-asan: bootstrap
	@cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DJB_SANITIZE=ON >/dev/null
	@cmake --build $(BUILD_ASAN) -j $(JOBS)

# Modules whose files must call one another one way (scripts/call-cycles reads the
# objects of the ASan build).
CYCLE_MODULES := dispatcher publisher subscription config kube application auth

# The whole suite: lint (clang-format, cppcheck), every fuzz target for
# FUZZ_SECONDS, the fault scenarios with loss
# accounting (tests/faults, about 4 minutes, on the release build that `make run`
# uses), then every CUnit suite (unit and integration, each against its own real
# nats-server, the Kubernetes ones against their own etcd + kube-apiserver) on the
# ASan+UBSan build.
test: lint build build-asan fuzz-smoke test-tools
	@scripts/call-cycles $(BUILD_ASAN) $(CYCLE_MODULES) > $(BUILD_ASAN)/call-cycles.txt || \
	  { cat $(BUILD_ASAN)/call-cycles.txt; echo 'call-cycles: a file-level call cycle'; exit 1; }
	@echo 'call-cycles: none in $(CYCLE_MODULES)'
	@tests/faults/run-all.sh $(BUILD_RELEASE)
	@cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j 2
	@$(MAKE) --no-print-directory tsan

unit: build-asan
	@cd $(BUILD_ASAN) && ctest --output-on-failure -L unit

integration: build-asan test-tools
	@cd $(BUILD_ASAN) && ctest --output-on-failure -L integration

build-fuzz: bootstrap
	@CC=clang cmake -S . -B $(BUILD_FUZZ) -DCMAKE_BUILD_TYPE=Debug -DJB_SANITIZE=ON -DJB_FUZZ=ON -DJB_TESTS=ON >/dev/null
	@cmake --build $(BUILD_FUZZ) -j $(JOBS) --target fuzzers

fuzz-smoke: build-fuzz
	@scripts/fuzz $(BUILD_FUZZ) $(FUZZ_SECONDS)

fuzz: build-fuzz
	@scripts/fuzz $(BUILD_FUZZ) $(FUZZ_LONG_SECONDS)

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

# clang-format conformance and cppcheck on the project's own code. varFuncNullUB is
# suppressed: jb_log's NULL sentinel is ((void *)0) with glibc, which is well defined.
lint: bootstrap
	@clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')
	@cppcheck --quiet --error-exitcode=1 --enable=warning,portability --std=c11 -I . \
	  --suppress=missingIncludeSystem --suppress=varFuncNullUB \
	  common config proto subscription application auth kube publisher dispatcher cli
	@$(MAKE) --no-print-directory lint-gates
	@echo 'lint: clean'

# Gates, as curl has them (docs/testing.md, "Gates"): the one-way module layers
# (scripts/check-layers, which the build runs too), banned functions (scripts/banned)
# and the function-length and complexity gate (.clang-tidy, scripts/tidy-gate, on 2 cores
# with build/lint's compile_commands.json). -Wformat=2 -Wconversion are in the build flags.
.PHONY: lint-gates
lint-gates:
	@scripts/check-layers .
	@scripts/banned
	@scripts/tidy-gate build/lint

clean:
	@rm -rf build

# Proof under faults (docs/reliability.md): fault scenarios with loss accounting,
# HTTP-level fuzz of a running publisher (asan build), valgrind memcheck runs.
.PHONY: faults fuzz-http valgrind
faults: build
	@tests/faults/run-all.sh $(BUILD_RELEASE)

fuzz-http: build-asan
	@tests/fuzz/http/run.sh $(BUILD_ASAN)

valgrind: build
	@scripts/valgrind $(BUILD_RELEASE)

# ThreadSanitizer (docs/testing.md, "ThreadSanitizer"): the integration suites that run
# threads (TSAN_SUITES), once, on build/tsan, building only them, jetbridge and sink.
# Every process, the jetbridge children included, writes its reports to
# build/tsan/tsan-reports/; any report fails the run. tests/tsan.supp is only for the
# uninstrumented nats.c and libevent internals (it holds no rule today). -O1 as TSan
# advises (CMakeLists.txt says why warnings do not stop this build).
BUILD_TSAN  := build/tsan
TSAN_SUITES ?= disp_delivery disp_resilience disp_threads disp_loops pub_api pub_faults integrity \
               app_registry sub_reconcile id_admin kube_failover kv_list
TSAN_EMPTY  :=
TSAN_SPACE  := $(TSAN_EMPTY) $(TSAN_EMPTY)
.PHONY: build-tsan tsan
build-tsan: bootstrap
	@cmake -S . -B $(BUILD_TSAN) -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-g -O1" \
	  -DJB_TSAN=ON >/dev/null
	@cmake --build $(BUILD_TSAN) -j $(JOBS) --target jetbridge sink \
	  $(addprefix integration_test_,$(TSAN_SUITES))

tsan: build-tsan test-tools
	@rm -rf $(BUILD_TSAN)/tsan-reports && mkdir -p $(BUILD_TSAN)/tsan-reports
	@cd $(BUILD_TSAN) && \
	  TSAN_OPTIONS="suppressions=$(CURDIR)/tests/tsan.supp log_path=$(CURDIR)/$(BUILD_TSAN)/tsan-reports/report second_deadlock_stack=1" \
	  ctest --output-on-failure -j 2 -R '^integration\.test_($(subst $(TSAN_SPACE),|,$(strip $(TSAN_SUITES))))$$'
	@scripts/tsan-reports $(BUILD_TSAN)/tsan-reports
