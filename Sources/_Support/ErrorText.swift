/// The one line a user reads for an error. Library modules throw errors that speak in values (which data set, which
/// setting, which numbers); the program that uses them knows how the user names those values (dpt's flags) and
/// installs `translate`, which turns such an error into its message. Every place that prints an error or passes
/// its text between ranks asks `message`.
public enum ErrorText {
  /// The user-facing message of an error, or nil to use the error's own description.
  nonisolated(unsafe) public static var translate: ((any Error) -> String?)?

  public static func message(_ error: any Error) -> String { translate?(error) ?? "\(error)" }
}
