# Cross-compiles cnnc for 64-bit Arm Linux with Debian's gcc-aarch64-linux-gnu
# and runs the tests under qemu-user:
#   cmake -S . -B build-arm -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake \
#         -DCNNC_BUILD_PYTHON=OFF && cmake --build build-arm && ctest --test-dir build-arm
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CNNC_CROSS_TRIPLE aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${CNNC_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${CNNC_CROSS_TRIPLE}-g++)

# Debian installs the target's libraries and headers under /usr/<triple>.
set(CMAKE_FIND_ROOT_PATH /usr/${CNNC_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# ctest runs every test binary through the emulator; -L tells it where the
# target's dynamic loader and libraries are.
find_program(CNNC_QEMU_AARCH64 NAMES qemu-aarch64 qemu-aarch64-static)
if(CNNC_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${CNNC_QEMU_AARCH64};-L;/usr/${CNNC_CROSS_TRIPLE})
endif()
