// Authentication of the local API (docs/api.md, "Authentication"): the bearer token, where it comes from
// (argv, a file, the environment, or a random cookie the daemon writes to its data dir, as bitcoind's
// .cookie), and the checks a request's headers must pass before its body is read.
#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace storjnet::api {

// The cookie file's name inside the daemon's data dir.
inline constexpr std::string_view kCookieName = ".cookie";

// 32 random bytes as 64 hex characters.
std::string random_token();
// Writes `token` to `path` (replaced atomically) readable by the owner only (mode 0600), or also by the
// file's group when `group_readable` (0640: a system service's admins, docs/api.md). Throws
// std::runtime_error with the reason.
void write_cookie(const std::filesystem::path& path, const std::string& token, bool group_readable = false);
// The first line of a token file (or cookie), without surrounding white space; nullopt when it cannot be
// read or is empty.
std::optional<std::string> read_token_file(const std::filesystem::path& path);

// Whether an Authorization header value is "Bearer <token>". Constant time in the header's content.
bool bearer_matches(std::string_view authorization, std::string_view token);
// Whether a Host header names this server in a way a DNS-rebinding page cannot: an IP literal (with or
// without a port), "localhost" (or a name under .localhost), or one of `extra` (case-insensitive).
bool host_allowed(std::string_view host, const std::vector<std::string>& extra);
// Whether a Content-Type header is JSON: application/json, with optional parameters (charset).
bool is_json_content_type(std::string_view content_type);

}  // namespace storjnet::api
