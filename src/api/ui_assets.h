// The status page's files (src/api/ui/: HTML, JavaScript, CSS), built into the binary: src/CMakeLists.txt
// generates a source holding them (src/api/embed_ui.cmake) at build time. Nothing is fetched from elsewhere.
#pragma once
#include <cstddef>
#include <string_view>

namespace storjnet::api {

struct UiAsset {
  std::string_view name;          // file name in src/api/ui/, e.g. "app.js"
  std::string_view content_type;  // from the extension
  std::string_view body;
};

// Defined in the generated source.
extern const UiAsset kUiAssets[];
extern const size_t kUiAssetCount;

// The file a GET of `path` (query string already removed) serves: "/ui" and "/ui/" give index.html,
// "/ui/network" gives network.html, "/ui/<name>" gives that file; nullptr for anything else.
const UiAsset* find_ui_asset(std::string_view path);

}  // namespace storjnet::api
