// A backtrace on a fatal signal, for crashes that only happen far from a
// debugger (a CI run, a user's machine).
#pragma once

#include <string>

namespace ipnfs::daemon {

// From now on SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT write the signal
// and the return addresses to stderr and, when given, to log_file; the signal
// then ends the process as it would have (a core where cores are on).  Does
// nothing in a sanitizer build: the sanitizer's own report says more.
void install_crash_report(const std::string& log_file);

}  // namespace ipnfs::daemon
