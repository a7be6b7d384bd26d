# CMake generated Testfile for 
# Source directory: /work/wt/install
# Build directory: /work/wt/install/build-arm
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
subdirs("tests/c")
