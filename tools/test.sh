#!/usr/bin/env bash
# tools/test.sh — set up (tools/setup.sh) and run the whole test suite with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh --with-test-tools
cd build
ctest --output-on-failure -j "$(nproc)" --timeout 1500
