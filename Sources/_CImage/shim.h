// libpng (the simplified API) and libjpeg-turbo, for images:DIR. Both decode from memory (Datasets reads the file
// with its size bounded first); every error comes back as a code and a message, never as exit() or a longjmp
// through Swift frames.
#ifndef DPT_IMAGE_SHIM_H
#define DPT_IMAGE_SHIM_H
#include <png.h>
#include <stdio.h>
#include <jpeglib.h>
#include <setjmp.h>
#include <string.h>

// An image's size and channels from its header: 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA. Returns 0, or -1 with the
// reason in `message` (size `capacity`).
typedef struct { unsigned int width, height, channels; } dpt_image_info;

// Starts reading a PNG's header into `image`; 0, or -1 with libpng's reason in `message` (the image freed).
static inline int dpt_png_begin(const unsigned char *bytes, size_t count, png_image *image, char *message, size_t capacity) {
  memset(image, 0, sizeof *image);
  image->version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(image, bytes, count)) {
    snprintf(message, capacity, "%s", image->message);
    png_image_free(image);
    return -1;
  }
  return 0;
}

static inline int dpt_png_info(const unsigned char *bytes, size_t count, dpt_image_info *info, char *message, size_t capacity) {
  png_image image;
  if (dpt_png_begin(bytes, count, &image, message, capacity) != 0) return -1;
  info->width = image.width;
  info->height = image.height;
  info->channels = ((image.format & PNG_FORMAT_FLAG_COLOR) ? 3 : 1) + ((image.format & PNG_FORMAT_FLAG_ALPHA) ? 1 : 0);
  png_image_free(&image);
  return 0;
}

// Decodes a PNG into `pixels` (height x width x channels bytes, rows top to bottom), converted by libpng to
// `channels` (1 gray, 2 gray + alpha, 3 RGB, 4 RGBA).
static inline int dpt_png_decode(const unsigned char *bytes, size_t count, unsigned int channels, unsigned char *pixels,
                                 size_t capacity, char *message, size_t messageCapacity) {
  png_image image;
  if (dpt_png_begin(bytes, count, &image, message, messageCapacity) != 0) return -1;
  image.format = channels == 1 ? PNG_FORMAT_GRAY : channels == 2 ? PNG_FORMAT_GA : channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_RGBA;
  if (PNG_IMAGE_SIZE(image) > capacity) {
    snprintf(message, messageCapacity, "its header's size changed between reads");
    png_image_free(&image);
    return -1;
  }
  if (!png_image_finish_read(&image, NULL, pixels, 0, NULL)) {
    snprintf(message, messageCapacity, "%s", image.message);
    png_image_free(&image);
    return -1;
  }
  png_image_free(&image);
  return 0;
}

// libjpeg reports a fatal error through error_exit: this one jumps back to the C function that started the read
// (never across Swift frames) with the library's message.
typedef struct {
  struct jpeg_error_mgr manager;
  jmp_buf back;
  char *message;
  size_t capacity;
} dpt_jpeg_error;

static void dpt_jpeg_exit(j_common_ptr cinfo) {
  dpt_jpeg_error *e = (dpt_jpeg_error *)cinfo->err;
  (*cinfo->err->format_message)(cinfo, e->message);
  longjmp(e->back, 1);
}

static void dpt_jpeg_silence(j_common_ptr cinfo, int level) { (void)cinfo; (void)level; }

// With `pixels` NULL, reads the header only (`info`); else decodes into `pixels` as gray (channels 1) or RGB (3).
// `message` must hold JMSG_LENGTH_MAX (200) bytes.
static inline int dpt_jpeg_read(const unsigned char *bytes, size_t count, dpt_image_info *info, unsigned int channels,
                                unsigned char *pixels, size_t capacity, char *message) {
  struct jpeg_decompress_struct cinfo;
  dpt_jpeg_error error;
  cinfo.err = jpeg_std_error(&error.manager);
  error.manager.error_exit = dpt_jpeg_exit;
  error.manager.emit_message = dpt_jpeg_silence;
  error.message = message;
  if (setjmp(error.back)) {
    jpeg_destroy_decompress(&cinfo);
    return -1;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, bytes, (unsigned long)count);
  jpeg_read_header(&cinfo, TRUE);
  info->width = cinfo.image_width;
  info->height = cinfo.image_height;
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
    snprintf(message, 200, "a CMYK JPEG (dpt reads gray and RGB JPEGs)");
    jpeg_destroy_decompress(&cinfo);
    return -1;
  }
  info->channels = cinfo.num_components == 1 ? 1 : 3;
  if (pixels == NULL) {
    jpeg_destroy_decompress(&cinfo);
    return 0;
  }
  cinfo.out_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  size_t stride = (size_t)cinfo.output_width * cinfo.output_components;
  if (stride * cinfo.output_height > capacity) {
    snprintf(message, 200, "its decoded size differs from its header's");
    jpeg_destroy_decompress(&cinfo);
    return -1;
  }
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = pixels + (size_t)cinfo.output_scanline * stride;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return 0;
}
#endif
