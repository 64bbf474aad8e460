#include "clients/cpp/client_runtime.h"

namespace im::client {
namespace {

WorkerPool::Options PoolOptions(const ClientRuntime::Options& options) {
  WorkerPool::Options pool;
  pool.name = "im-client";
  pool.threads = options.worker_threads < 1 ? 1 : options.worker_threads;
  pool.max_queue = options.max_queued_tasks;
  return pool;
}

}  // namespace

ClientRuntime::ClientRuntime(const Options& options)
    : workers_(PoolOptions(options)) {}

}  // namespace im::client
