// A VDE endpoint's client, private to netdev/vde_endpoint.cpp (which accepts
// it) and netdev/vde_client.cpp (which serves it).
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bus/status.hpp"
#include "netdev/device.hpp"
#include "netdev/engine.hpp"
#include "netdev/thread_credentials.hpp"
#include "netdev/vde_endpoint.hpp"

namespace ipnfs::netdev {

namespace vde {
struct Request;
}  // namespace vde

// One client: its control connection (watched for its request, then for its
// end) and, once served, its port's Device.  Lives on the engine thread.
class VdeEndpoints::Client final : public Pollable {
  public:
    enum class State : std::uint8_t { requesting, serving, ended };

    Client(Endpoint& endpoint, int fd, Credentials peer)
        : endpoint_(endpoint), fd_(fd), peer_(std::move(peer)) {}
    ~Client() override { end(); }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    void on_readable() override;
    void on_wake() override {}

    // Lets go of the port, the socket and the connection.  Engine thread.
    void end();

    [[nodiscard]] int fd() const { return fd_; }
    // What stats shows; under the owner's mu_.
    [[nodiscard]] State state() const { return state_; }
    [[nodiscard]] const Device* device() const { return device_.get(); }
    [[nodiscard]] const std::string& description() const { return description_; }
    [[nodiscard]] uid_t uid() const { return peer_.uid; }

  private:
    void read_request();
    void read_after_request();
    bus::Status serve(const vde::Request& request);

    Endpoint& endpoint_;
    int fd_;
    const Credentials peer_;          // of the control connection: the client's own rights
    std::vector<std::byte> request_;  // what has arrived of the request
    std::string socket_name_;         // its datagram socket, in the endpoint's directory
    // What stats shows: written on the engine thread under the owner's mu_,
    // read there without it (the engine thread is their only writer) and by
    // stats under it.  No GUARDED_BY: the analysis has no notion of a lone
    // writer reading its own writes, and would reach the owner's mu_ from
    // here only through references (endpoint_, its owner) it cannot follow.
    State state_ = State::requesting;
    std::unique_ptr<Device> device_;
    std::string description_;
};

}  // namespace ipnfs::netdev
