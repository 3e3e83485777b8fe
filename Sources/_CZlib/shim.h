// zlib, for reading gzip-compressed IDX and CSV files.
#ifndef DPT_ZLIB_SHIM_H
#define DPT_ZLIB_SHIM_H
#include <zlib.h>
// inflateInit2 is a macro over inflateInit2_ with the header's version and struct size.
static inline int dpt_inflate_init_gzip(z_stream *stream) {
  return inflateInit2(stream, 15 + 32);  // 15-bit window, +32: detect gzip or zlib header automatically
}
// A zip archive's deflated member: raw deflate, no header (windowBits -15).
static inline int dpt_inflate_init_raw(z_stream *stream) {
  return inflateInit2(stream, -15);
}
#endif
