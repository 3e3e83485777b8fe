/// Text a user pastes into a shell: every command dpt prints for a user to run goes through `quote`.
public enum ShellWords {
  /// `word` as one POSIX shell word: itself when it holds only characters no shell treats specially, else in single
  /// quotes (a quote inside written '\'').
  public static func quote(_ word: String) -> String {
    let plain = !word.isEmpty && word.unicodeScalars.allSatisfy {
      ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "-_./=:,+@%".unicodeScalars.contains($0)
    }
    return plain ? word : "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
  }
}
