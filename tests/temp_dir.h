// temp_dir: a fresh, empty directory for one test, under the system's temp dir and named per process.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <string>

namespace storjnet::test {

inline std::filesystem::path temp_dir(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() / ("storjnet-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}

}  // namespace storjnet::test
