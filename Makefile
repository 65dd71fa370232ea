# What people type.  CMake does the building; this file only names the steps.
#   make          build (release with debug info) into build/
#   make test     install missing packages, then run the whole suite twice:
#                 a normal -Werror build and an ASan+UBSan build
#   make run      install missing packages, build, run the demo: simulated
#                 APIs, holdfast and a dashboard at http://127.0.0.1:8080/
#   make bench    holdfast against nginx and Varnish on this machine, plus the
#                 micro-benchmarks: one table, bench/results/latest.md
#   make clean
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_FLAGS ?= --output-on-failure -j$(JOBS)

.PHONY: all deps build build-asan run test test-normal test-asan bench clean format

all: build

deps:
	@sh scripts/deps.sh

build: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build -j$(JOBS)

build-asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DHF_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j$(JOBS)

run: build
	@./build/holdfast demo -c examples/dashboard/holdfast.yaml

test: test-normal test-asan

test-normal: build
	@echo "== tests: normal build =="
	@cd build && ctest $(CTEST_FLAGS)

test-asan: build-asan
	@echo "== tests: ASan+UBSan build =="
	@cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest $(CTEST_FLAGS)

bench:
	@sh scripts/deps.sh bench
	@cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
	@cmake --build build-release -j$(JOBS)
	@bench/run build-release/holdfast

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-release
