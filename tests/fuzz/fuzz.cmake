# Included by imagefmt/CMakeLists.txt.
# Fuzzing of the qcow2 and VMDK parsers: the parsers rebuilt with ASan+UBSan
# and a self-contained mutation driver (fuzz_image_parsers.cpp). A bounded run
# (UTSUSHI_FUZZ_SECONDS, default 30) is a ctest test; run longer by hand:
#   build/bin/fuzz_image_parsers 600 /path/to/seeds
set(utsushi_fuzz_dir ${CMAKE_CURRENT_LIST_DIR} CACHE INTERNAL "tests/fuzz source directory")
set(UTSUSHI_FUZZ_SECONDS 30 CACHE STRING "Seconds of the bounded fuzz run in ctest")
get_target_property(imagefmt_sources utsushi_imagefmt SOURCES)
get_target_property(imagefmt_dir utsushi_imagefmt SOURCE_DIR)
list(TRANSFORM imagefmt_sources PREPEND ${imagefmt_dir}/)
add_executable(fuzz_image_parsers ${utsushi_fuzz_dir}/fuzz_image_parsers.cpp ${imagefmt_sources})
target_include_directories(fuzz_image_parsers PRIVATE ${imagefmt_dir}/include)
target_compile_options(fuzz_image_parsers PRIVATE -fsanitize=address,undefined -fno-sanitize-recover=all -O1 -g)
target_link_options(fuzz_image_parsers PRIVATE -fsanitize=address,undefined)
# The same libraries as utsushi_imagefmt itself links, whatever they become.
get_target_property(imagefmt_links utsushi_imagefmt LINK_LIBRARIES)
target_link_libraries(fuzz_image_parsers PRIVATE ${imagefmt_links})
# add_test must wait for enable_testing() (include(CTest) at the top level).
function(utsushi_imagefmt_add_fuzz_test)
  if(BUILD_TESTING)
    add_test(NAME fuzz.image_parsers
      COMMAND bash -c "d=$(mktemp -d) && trap 'rm -rf $d' EXIT && bash ${utsushi_fuzz_dir}/make-seeds.sh $d/seeds $<TARGET_FILE:utsushi-img> && cd $d && $<TARGET_FILE:fuzz_image_parsers> ${UTSUSHI_FUZZ_SECONDS} $d/seeds")
    set_tests_properties(fuzz.image_parsers PROPERTIES LABELS fuzz TIMEOUT 300)
  endif()
endfunction()
cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL utsushi_imagefmt_add_fuzz_test)
