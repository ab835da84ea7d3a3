#include "api/ui_assets.h"

#include <string>

namespace storjnet::api {

const UiAsset* find_ui_asset(std::string_view path) {
  std::string name;
  if (path == "/ui" || path == "/ui/") name = "index.html";
  else if (path == "/ui/network") name = "network.html";
  else if (path.starts_with("/ui/")) name = path.substr(4);
  else return nullptr;
  for (size_t i = 0; i < kUiAssetCount; ++i)
    if (kUiAssets[i].name == name) return &kUiAssets[i];
  return nullptr;
}

}  // namespace storjnet::api
