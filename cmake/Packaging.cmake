# `cpack -G DEB` in a build directory: ipnfs_VERSION_ARCH.deb with everything
# `cmake --install` installs, under /usr, plus what a Debian package carries
# (debian/: copyright, changelog, maintainer scripts, lintian overrides).
# tests/integration/package_test.cpp runs lintian on it and installs it.
set(IPNFS_PACKAGE_MAINTAINER "ipnfs developers <ipnfs-devel@lists.ipnfs.org>"
  CACHE STRING "Maintainer field of the .deb")

# debian/changelog's newest entry is this version: the package's changelog
# and its Version field must not disagree.
file(STRINGS "${CMAKE_SOURCE_DIR}/debian/changelog" ipnfs_changelog_top LIMIT_COUNT 1)
if(NOT ipnfs_changelog_top MATCHES "^ipnfs \\(([^)]+)\\) ")
  message(FATAL_ERROR "debian/changelog: the first line is not `ipnfs (VERSION) ...`: "
    "${ipnfs_changelog_top}")
endif()
if(NOT CMAKE_MATCH_1 STREQUAL PROJECT_VERSION)
  message(FATAL_ERROR "debian/changelog's newest entry is ${CMAKE_MATCH_1}, the project is "
    "${PROJECT_VERSION}: add an entry (dch -v ${PROJECT_VERSION}) or fix project(VERSION)")
endif()

# /usr/share/doc/ipnfs: the machine-readable copyright (DEP-5), and the
# changelog gzip -9n (no name, no time stamp) as changelog.gz, the name
# Debian gives the changelog of a native package.
file(MAKE_DIRECTORY "${CMAKE_BINARY_DIR}/debian")
set(ipnfs_changelog_gz "${CMAKE_BINARY_DIR}/debian/changelog.gz")
add_custom_command(OUTPUT "${ipnfs_changelog_gz}"
  COMMAND sh -c "gzip -9n -c \"$0\" > \"$1\"" "${CMAKE_SOURCE_DIR}/debian/changelog"
          "${ipnfs_changelog_gz}"
  DEPENDS "${CMAKE_SOURCE_DIR}/debian/changelog"
  COMMENT "Compressing debian/changelog"
  VERBATIM)
add_custom_target(ipnfs_changelog ALL DEPENDS "${ipnfs_changelog_gz}")
install(FILES debian/copyright "${ipnfs_changelog_gz}" DESTINATION ${CMAKE_INSTALL_DOCDIR})
# The tags lintian cannot be argued out of, each with its reason.
install(FILES debian/ipnfs.lintian-overrides DESTINATION share/lintian/overrides
        RENAME ipnfs)

# What dpkg-buildflags would add to the programs and the plugin the package
# ships, as lintian's hardening checks expect: fortified libc calls, and
# relocations resolved at start and then read-only (bind now).  Not in the
# sanitizer and fuzzing builds, which bring their own checks.
if(NOT IPNFS_SANITIZE AND NOT IPNFS_TSAN AND NOT IPNFS_FUZZ)
  foreach(target ipnfs ipnfs-cable ipnfs_topic)
    target_compile_definitions(${target} PRIVATE _FORTIFY_SOURCE=2)
    target_link_options(${target} PRIVATE LINKER:-z,relro LINKER:-z,now)
  endforeach()
endif()
# `strip` keeps .comment (the compiler's version) and .note; dh_strip drops
# them, and so does this, on every ELF file this install has installed
# (the manifest so far: this rule comes last), nothing else under the prefix.
install(CODE [[
  if(CMAKE_INSTALL_DO_STRIP)
    foreach(file IN LISTS CMAKE_INSTALL_MANIFEST_FILES)
      # The manifest names the files without DESTDIR (CPack stages there).
      set(destdir "$ENV{DESTDIR}")
      string(FIND "${file}" "${destdir}" at)
      if(destdir AND NOT at EQUAL 0)
        set(file "${destdir}${file}")
      endif()
      if(EXISTS "${file}" AND NOT IS_SYMLINK "${file}" AND NOT IS_DIRECTORY "${file}")
        file(READ "${file}" magic LIMIT 4 HEX)
        if(magic STREQUAL "7f454c46")
          execute_process(COMMAND objcopy --remove-section=.comment --remove-section=.note
                                  "${file}" COMMAND_ERROR_IS_FATAL ANY)
        endif()
      endif()
    endforeach()
  endif()
]])

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME ipnfs)
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_CONTACT "${IPNFS_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "message buses as files (FUSE)")
string(CONCAT CPACK_PACKAGE_DESCRIPTION
  "ipnfs mounts message buses as a file system: each directory is a network,\n"
  "each portN file a port; a write sends one message through the network's\n"
  "policy (hub, Ethernet switch with VLANs, TIPC-style groups, plugins), a\n"
  "read receives one. Networks join TAP interfaces, grabbed interfaces, VDE\n"
  "clients and each other (ipnfs-cable).")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # ipnfs_VERSION_ARCH.deb
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${IPNFS_PACKAGE_MAINTAINER}")
# The libraries come from dpkg-shlibdeps; fuse3 is what mount.fuse.ipnfs
# points to, and fusermount3 for users who are not root.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS fuse3)
# `ipnfs top` (/usr/bin/ipnfs-top) and the Python module need python3; the
# daemon and the other tools run without it.
set(CPACK_DEBIAN_PACKAGE_SUGGESTS python3)
set(CPACK_STRIP_FILES ON)
# The maintainer scripts: the unit as dh_installsystemd would handle it, the
# Python module (shipped without .pyc) compiled and cleaned as dh_python3
# would.  Modes and owners as dpkg-deb would make them (root:root, 0755 dirs, the
# maintainer scripts 0755, the control files 0644), whatever the umask.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  "${CMAKE_SOURCE_DIR}/debian/postinst;${CMAKE_SOURCE_DIR}/debian/prerm;${CMAKE_SOURCE_DIR}/debian/postrm")
# The mount helper link is made by install(CODE) under $ENV{DESTDIR}
# (mount-helper/CMakeLists.txt): CPack must stage through DESTDIR, or the
# link would be made in the live /sbin and miss the package.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)

include(CPack)
