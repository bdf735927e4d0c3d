// libFuzzer calls this once, before the first input, in every target.
#include <spdlog/spdlog.h>

// Log lines of refused input are expected by the thousand: they would drown
// the fuzzer's own output.
extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
    spdlog::set_level(spdlog::level::off);
    return 0;
}
