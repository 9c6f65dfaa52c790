"""Exit codes of `kubetfx`, distinct so scripts and CI can tell outcomes apart."""
from kubetfx.components.container.images import MissingImageError
from kubetfx.components.example_gen.csv_input import InputError
from kubetfx.pipelines.config import ConfigError

OK = 0
CRASH = 1             # a stage failed unexpectedly; see the log
USAGE = 2             # bad flags, config or input data: fix and re-run
DATA_REJECTED = 3     # ExampleValidator found error anomalies (on_anomalies: fail)
NOT_BLESSED = 4       # the model did not pass Evaluator or InfraValidator: nothing pushed
BUSY = 5              # another run of this pipeline holds the home directory
SUBMIT_RUN_FAILED = 6    # submit --wait: the KFP run ended FAILED, ERROR, CANCELED or SKIPPED
SUBMIT_REFUSED = 7       # submit: KFP unreachable, or it refused the upload or the run (its message shown)
SUBMIT_LOST_RUN = 8      # submit --wait: the API failed while watching the run (the run may go on)
SUBMIT_WAIT_TIMEOUT = 9  # submit --wait: --timeout passed before the run ended (the run goes on)
SUBMIT_UNSUPPORTED_BACKEND = 12  # submit: the backend's KFP version cannot run the spec (before 2.3.0)
INTERRUPTED = 130        # Ctrl-C (128 + SIGINT, as shells report it)
PIPE_CLOSED = 141        # stdout's reader went away (`| head`): ended quietly (128 + SIGPIPE, as shells report it)
DRIFT = 11            # monitor: drift, skew or schema anomalies against the served model (10: backend's TIMED_OUT)
TIMED_OUT = 10        # a task ran past its time limit (--task-timeout) and was stopped

# Errors a user can fix; reported as one line, without a stack trace.
UserError = (InputError, ConfigError, MissingImageError)
