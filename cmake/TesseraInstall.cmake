# TesseraInstall.cmake - what `cmake --install` ships, and how others build
# against it:
#   bin/tessera                          the command (exports its symbols, so a
#                                        --model-plugin resolves tsr_* from it)
#   include/tessera/*.h                  the public API, version.h included
#   lib/libtessera.a                     one archive of the layers (runtime with
#                                        its kernels, collectives, sharding,
#                                        models) for programs that embed tessera
#   lib/cmake/tessera/                   find_package(tessera): tessera::plugin
#                                        (include directories only, for plugins)
#                                        and tessera::tessera (the archive and
#                                        its dependencies)
#   lib/pkgconfig/tessera.pc             the same for pkg-config
# examples/custom_model builds a plugin against an installed prefix;
# tests/plugin checks the whole round trip.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(TSR_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/tessera)

install(TARGETS tessera RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/tessera
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.h")
install(FILES ${PROJECT_BINARY_DIR}/include/tessera/version.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/tessera)

# The embedding library: the object files of every layer in one archive, so
# that a program links one file in any order (the layers' own archives stay
# what the build links).
set(TSR_LAYER_LIBRARIES tsr_runtime tsr_collectives tsr_sharding tsr_models)
set(tsr_layer_objects)
foreach(lib ${TSR_LAYER_LIBRARIES})
  list(APPEND tsr_layer_objects $<TARGET_OBJECTS:${lib}>)
endforeach()
add_library(tessera_library STATIC ${tsr_layer_objects})
set_target_properties(tessera_library PROPERTIES OUTPUT_NAME tessera LINKER_LANGUAGE C
                      ARCHIVE_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/lib)
install(TARGETS tessera_library ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})

# What a program linking the archive needs besides it (tesseraConfig.cmake
# finds the same packages; tessera.pc names them).
set(TSR_INSTALL_CUDA ${TSR_HAVE_CUDA})
set(TSR_INSTALL_NCCL_LIBRARY "")
if(TSR_HAVE_NCCL)
  set(TSR_INSTALL_NCCL_LIBRARY ${NCCL_LIBRARY})
endif()
set(TSR_PC_LIBS_EXTRA "${OpenMP_C_FLAGS} -lm")
foreach(lib ${CMAKE_DL_LIBS})
  string(APPEND TSR_PC_LIBS_EXTRA " -l${lib}")
endforeach()
if(TSR_HAVE_DNNL)
  string(APPEND TSR_PC_LIBS_EXTRA " -ldnnl")
endif()
if(TSR_HAVE_CUDA)
  string(APPEND TSR_PC_LIBS_EXTRA " -L${CUDAToolkit_LIBRARY_DIR} -lcublasLt -lcublas -lcudart")
endif()
if(TSR_HAVE_NCCL)
  string(APPEND TSR_PC_LIBS_EXTRA " ${NCCL_LIBRARY}")
endif()

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/tesseraConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/cmake/tesseraConfig.cmake
                              INSTALL_DESTINATION ${TSR_INSTALL_CMAKEDIR}
                              PATH_VARS CMAKE_INSTALL_INCLUDEDIR CMAKE_INSTALL_LIBDIR)
# 0.x: a minor release may change the API
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cmake/tesseraConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cmake/tesseraConfig.cmake
              ${PROJECT_BINARY_DIR}/cmake/tesseraConfigVersion.cmake
        DESTINATION ${TSR_INSTALL_CMAKEDIR})

# tessera.pc finds its prefix from its own place (${pcfiledir}), so the
# file is right wherever `cmake --install --prefix` puts it
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(TSR_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH tsr_pc_up "/root/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/root")
  string(REGEX REPLACE "/$" "" tsr_pc_up "${tsr_pc_up}")
  set(TSR_PC_PREFIX "\${pcfiledir}/${tsr_pc_up}")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/tessera.pc.in ${PROJECT_BINARY_DIR}/cmake/tessera.pc
               @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/cmake/tessera.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
