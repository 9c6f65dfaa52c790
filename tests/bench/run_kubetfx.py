"""One `kubetfx run` in this process (the real CLI); prints a JSON line with the exit code,
this process's exact peak RSS and the largest child's (getrusage: the InfraValidator's model
server is a child). bench.py samples the sum of the whole process tree beside these."""
import json
import resource
import sys

from kubetfx.pipelines import cli
from kubetfx.pipelines.run import exit_without_teardown

code = cli.main(["run", *sys.argv[1:]])
print(json.dumps({"exit_code": code,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "children_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
# As the `kubetfx` console command ends (pipelines/run/exit_without_teardown.py): what a user waits for.
exit_without_teardown.exit_now(code)
