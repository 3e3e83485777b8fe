// OpenMPI for Swift. MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, MPI_IN_PLACE, ... are macros over addresses of global
// structs, which Swift cannot import: each is wrapped in a static inline function here.
#ifndef DPT_MPI_SHIM_H
#define DPT_MPI_SHIM_H
#include <mpi.h>

static inline MPI_Comm dpt_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm dpt_mpi_comm_null(void) { return MPI_COMM_NULL; }
static inline MPI_Datatype dpt_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype dpt_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype dpt_mpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype dpt_mpi_int32(void) { return MPI_INT32_T; }
static inline MPI_Datatype dpt_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Op dpt_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op dpt_mpi_max(void) { return MPI_MAX; }
static inline MPI_Op dpt_mpi_min(void) { return MPI_MIN; }
static inline void *dpt_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Status *dpt_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline int dpt_mpi_comm_type_shared(void) { return MPI_COMM_TYPE_SHARED; }
static inline MPI_Info dpt_mpi_info_null(void) { return MPI_INFO_NULL; }
static inline MPI_Win dpt_mpi_win_null(void) { return MPI_WIN_NULL; }
static inline MPI_Errhandler dpt_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline int dpt_mpi_any_source(void) { return MPI_ANY_SOURCE; }
static inline int dpt_mpi_any_tag(void) { return MPI_ANY_TAG; }
static inline int dpt_mpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
static inline int dpt_mpi_source(const MPI_Status *status) { return status->MPI_SOURCE; }
static inline int dpt_mpi_tag(const MPI_Status *status) { return status->MPI_TAG; }

#endif
