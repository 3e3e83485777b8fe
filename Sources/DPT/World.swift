import Collectives
import Foundation
import TensorCore

/// Starting and ending the processes of a job as `dpt` does, for a program of one's own:
///
///     World.prepare()                       // first thing in main: may re-execute the process
///     let communicator = try World.start()  // MPI under mpirun, one local rank otherwise
///     ... Run(trainer: ...).execute(observers: ...)
///     try World.finish(communicator)
public enum World {
  /// The world rank from mpirun's environment (0 without mpirun), known before MPI starts.
  public static var environmentRank: Int {
    Int(ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_RANK"] ?? "0") ?? 0
  }

  /// What the process needs before anything else starts (threads, files, MPI): OpenBLAS's widest kernel for this CPU
  /// (`BLASKernelChoice`, which may re-execute the process), and memory kept for the next step instead of returned.
  public static func prepare() {
    BLASKernelChoice.apply()
    keepFreedMemory()
  }

  /// The world communicator: MPI under mpirun, with the host's cores shared out as BLAS threads among its ranks (unless
  /// OPENBLAS_NUM_THREADS says otherwise); one local rank without mpirun.
  public static func start() throws -> any Communicator {
    guard MPICommunicator.isLaunchedByMPI else { return LocalCommunicator() }
    setBLASThreadsPerRank()
    return try MPICommunicator.world()
  }

  /// Ends the job cleanly: the sends still in flight complete, then MPI_Finalize (nothing without mpirun).
  public static func finish(_ communicator: any Communicator) throws {
    guard let mpi = communicator as? MPICommunicator else { return }
    try mpi.completeSends()
    MPICommunicator.finalize()
  }

  /// The host of each rank of the world: MPI's processor names, or this machine's name on one rank.
  public static func hostNames(_ comm: any Communicator) -> [String] {
    if comm is MPICommunicator, MPICommunicator.hostNames.count == comm.size { return MPICommunicator.hostNames }
    return Array(repeating: ProcessInfo.processInfo.hostName, count: comm.size)
  }

  /// Every training step frees and reallocates the same few large buffers (batches, activations, im2col columns).
  /// glibc serves blocks above its mmap threshold with fresh mappings and returns freed heap tops to the kernel, so
  /// each step page-faults its buffers in again (13% of a CNN epoch's time here). Raised thresholds keep freed
  /// memory in the process for the next step; peak memory is unchanged.
  static func keepFreedMemory() {
    // mallopt is declared in <malloc.h>, which Swift's Glibc module does not import: look it up.
    typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
    let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
    let M_TRIM_THRESHOLD: Int32 = -1, M_MMAP_THRESHOLD: Int32 = -3  // <malloc.h>
    _ = mallopt(M_MMAP_THRESHOLD, 512 << 20)
    _ = mallopt(M_TRIM_THRESHOLD, 1 << 30)
  }

  /// One BLAS thread per core: with OPENBLAS_NUM_THREADS unset, a Slurm task takes the CPUs Slurm gave it
  /// (SLURM_CPUS_PER_TASK), and otherwise each of the node's ranks gets cores / ranks threads.
  static func setBLASThreadsPerRank() {
    let env = ProcessInfo.processInfo.environment
    guard env["OPENBLAS_NUM_THREADS"] == nil else { return }
    if let perTask = env["SLURM_CPUS_PER_TASK"].flatMap({ Int($0) }), perTask >= 1 { return BLASThreads.set(perTask) }
    let local = Int(env["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? env["SLURM_NTASKS_PER_NODE"] ?? "1") ?? 1
    let cores = sysconf(Int32(_SC_NPROCESSORS_ONLN))
    BLASThreads.set(max(1, cores / max(local, 1)))
  }
}
