#include "api/auth.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "storjnet/endpoint.h"

namespace storjnet::api {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::array<uint8_t, 32> digest(std::string_view s) {
  std::array<uint8_t, 32> out;
  crypto_generichash(out.data(), out.size(), reinterpret_cast<const uint8_t*>(s.data()), s.size(), nullptr, 0);
  return out;
}

}  // namespace

std::string random_token() {
  std::array<uint8_t, 32> raw;
  randombytes_buf(raw.data(), raw.size());
  std::string hex(raw.size() * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), raw.data(), raw.size());
  hex.pop_back();
  return hex;
}

void write_cookie(const std::filesystem::path& path, const std::string& token, bool group_readable) {
  auto tmp = path;
  tmp += ".tmp";
  auto fail = [&](const char* what) {
    throw std::runtime_error(std::string("cannot ") + what + " " + tmp.string() + ": " + std::strerror(errno));
  };
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) fail("create");
  std::string line = token + "\n";
  bool ok = ::fchmod(fd, group_readable ? 0640 : 0600) == 0 && ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
            ::fsync(fd) == 0;
  int saved = errno;
  ::close(fd);
  errno = saved;
  if (!ok) fail("write");
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("rename");
}

std::optional<std::string> read_token_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  auto t = trim(line);
  if (t.empty()) return std::nullopt;
  return std::string(t);
}

bool bearer_matches(std::string_view authorization, std::string_view token) {
  // Both sides hashed first: the compare then takes the same time whatever the header's length or content.
  std::string expect = "Bearer " + std::string(token);
  auto a = digest(authorization), b = digest(expect);
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool host_allowed(std::string_view host, const std::vector<std::string>& extra) {
  host = trim(host);
  if (host.empty()) return false;
  std::string_view name = host;
  if (host.front() == '[') {  // [v6] or [v6]:port
    auto close = host.find(']');
    if (close == std::string_view::npos) return false;
    name = host.substr(1, close - 1);
  } else if (std::count(host.begin(), host.end(), ':') == 1) {  // name:port or v4:port
    name = host.substr(0, host.find(':'));
  }
  if (Endpoint::from_ip(std::string(name), 1)) return true;  // an IP literal cannot be rebound
  std::string n = lower(name);
  if (!n.empty() && n.back() == '.') n.pop_back();
  if (n == "localhost" || n.ends_with(".localhost")) return true;
  return std::any_of(extra.begin(), extra.end(), [&](const std::string& e) { return lower(e) == n; });
}

bool is_json_content_type(std::string_view content_type) {
  auto semi = content_type.find(';');
  return lower(trim(content_type.substr(0, semi))) == "application/json";
}

}  // namespace storjnet::api
