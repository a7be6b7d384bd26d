# CMake generated Testfile for 
# Source directory: /work/wt/install/tests/c
# Build directory: /work/wt/install/build-arm/tests/c
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
add_test("test_activation_scalar" "/usr/bin/qemu-aarch64" "-L" "/usr/aarch64-linux-gnu" "/work/wt/install/build-arm/tests/c/test_activation")
set_tests_properties("test_activation_scalar" PROPERTIES  ENVIRONMENT "CNNC_ISA=scalar" _BACKTRACE_TRIPLES "/work/wt/install/tests/c/CMakeLists.txt;15;add_test;/work/wt/install/tests/c/CMakeLists.txt;0;")
add_test("test_augment_scalar" "/usr/bin/qemu-aarch64" "-L" "/usr/aarch64-linux-gnu" "/work/wt/install/build-arm/tests/c/test_augment")
set_tests_properties("test_augment_scalar" PROPERTIES  ENVIRONMENT "CNNC_ISA=scalar" _BACKTRACE_TRIPLES "/work/wt/install/tests/c/CMakeLists.txt;15;add_test;/work/wt/install/tests/c/CMakeLists.txt;0;")
add_test("test_conv_scalar" "/usr/bin/qemu-aarch64" "-L" "/usr/aarch64-linux-gnu" "/work/wt/install/build-arm/tests/c/test_conv")
set_tests_properties("test_conv_scalar" PROPERTIES  ENVIRONMENT "CNNC_ISA=scalar" _BACKTRACE_TRIPLES "/work/wt/install/tests/c/CMakeLists.txt;15;add_test;/work/wt/install/tests/c/CMakeLists.txt;0;")
add_test("test_core_scalar" "/usr/bin/qemu-aarch64" "-L" "/usr/aarch64-linux-gnu" "/work/wt/install/build-arm/tests/c/test_core")
set_tests_properties("test_core_scalar" PROPERTIES  ENVIRONMENT "CNNC_ISA=scalar" _BACKTRACE_TRIPLES "/work/wt/install/tests/c/CMakeLists.txt;15;add_test;/work/wt/install/tests/c/CMakeLists.txt;0;")
add_test("test_gemm_scalar" "/usr/bin/qemu-aarch64" "-L" "/usr/aarch64-linux-gnu" "/work/wt/install/build-arm/tests/c/test_gemm")
set_tests_properties("test_gemm_scalar" PROPERTIES  ENVIRONMENT "CNNC_ISA=scalar" _BACKTRACE_TRIPLES "/work/wt/install/tests/c/CMakeLists.txt;15;add_test;/work/wt/install/tests/c/CMakeLists.txt;0;")
add_test("test_kernels_scalar" "/usr/bin/qemu-aarch64" "-L" "/usr/aarch64-linux-gnu" "/work/wt/install/build-arm/tests/c/test_kernels")
set_tests_properties("test_kernels_scalar" PROPERTIES  ENVIRONMENT "CNNC_ISA=scalar" _BACKTRACE_TRIPLES "/work/wt/install/tests/c/CMakeLists.txt;15;add_test;/work/wt/install/tests/c/CMakeLists.txt;0;")
add_test("test_loss_scalar" "/usr/bin/qemu-aarch64" "-L" "/usr/aarch64-linux-gnu" "/work/wt/install/build-arm/tests/c/test_loss")
set_tests_properties("test_loss_scalar" PROPERTIES  ENVIRONMENT "CNNC_ISA=scalar" _BACKTRACE_TRIPLES "/work/wt/install/tests/c/CMakeLists.txt;15;add_test;/work/wt/install/tests/c/CMakeLists.txt;0;")
add_test("test_optim_scalar" "/usr/bin/qemu-aarch64" "-L" "/usr/aarch64-linux-gnu" "/work/wt/install/build-arm/tests/c/test_optim")
set_tests_properties("test_optim_scalar" PROPERTIES  ENVIRONMENT "CNNC_ISA=scalar" _BACKTRACE_TRIPLES "/work/wt/install/tests/c/CMakeLists.txt;15;add_test;/work/wt/install/tests/c/CMakeLists.txt;0;")
add_test("test_vecmath_scalar" "/usr/bin/qemu-aarch64" "-L" "/usr/aarch64-linux-gnu" "/work/wt/install/build-arm/tests/c/test_vecmath")
set_tests_properties("test_vecmath_scalar" PROPERTIES  ENVIRONMENT "CNNC_ISA=scalar" _BACKTRACE_TRIPLES "/work/wt/install/tests/c/CMakeLists.txt;15;add_test;/work/wt/install/tests/c/CMakeLists.txt;0;")
