{
  "targets": [
    {
      "target_name": "bpfnet",
      "sources": [
        "native/addon.cc",
        "native/common.cc",
        "native/object.cc",
        "native/map.cc",
        "native/program.cc",
        "native/link.cc",
        "native/ringbuf.cc",
        "native/netlink.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++14", "-std=gnu++17"],
      "cflags_cc": ["-std=gnu++17", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "libraries": ["-lbpf", "-lelf", "-lz"]
    }
  ]
}
