/// Text from a user's file (a cell, a column's name) as a message quotes it: in single quotes, control characters
/// shown as spaces, cut at `limit` characters with the full length said, so that a 50 MB cell is one short line.
public func quoted(_ text: some StringProtocol, limit: Int = 80) -> String {
  let shown = String(text.prefix(limit).map { $0.isNewline || ($0.asciiValue.map { $0 < 0x20 || $0 == 0x7F } ?? false) ? " " : $0 })
  guard text.count > limit else { return "'\(shown)'" }
  return "'\(shown)...' (\(text.count) characters)"
}
