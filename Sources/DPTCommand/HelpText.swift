extension String {
  /// Help text whose paragraphs are one line each, for swift-argument-parser to wrap once at the terminal's width.
  ///
  /// The sources wrap their help at about 115 columns; ArgumentParser keeps those line breaks and wraps again at the
  /// terminal's width, which left a short line after every source line. A source line is joined to the next when
  /// both are paragraph text (not indented: indented lines are examples, kept as written), the first is long (a wrap,
  /// not a break the author meant: 80 columns or more) and does not end with a colon, and the next is not a list
  /// item.
  var reflowed: String {
    var out: [String] = []
    var previous = ""  // the last source line, as written
    for line in split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
      let joins = !out.isEmpty && previous.count >= 80 && previous.first != " " && !previous.hasSuffix(":")
        && !line.isEmpty && line.first != " " && !line.hasPrefix("- ")
      if joins { out[out.count - 1] += " " + line } else { out.append(line) }
      previous = line
    }
    return out.joined(separator: "\n")
  }
}
