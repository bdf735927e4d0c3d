# `cpack -G DEB` in a build directory: ipnfs_VERSION_ARCH.deb with everything
# `cmake --install` installs, under /usr.
set(IPNFS_PACKAGE_MAINTAINER "ipnfs maintainers <maintainers@ipnfs.invalid>"
  CACHE STRING "Maintainer field of the .deb")

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
# The mount helper link is made by install(CODE) under $ENV{DESTDIR}
# (mount-helper/CMakeLists.txt): CPack must stage through DESTDIR, or the
# link would be made in the live /sbin and miss the package.
set(CPACK_SET_DESTDIR ON)
# The Python module (python/CMakeLists.txt) ships without .pyc; these
# compile it at install and clean up at removal, as dh_python3 would.
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  "${CMAKE_CURRENT_LIST_DIR}/debian/postinst;${CMAKE_CURRENT_LIST_DIR}/debian/prerm")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)

include(CPack)
