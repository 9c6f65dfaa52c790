"""One `kubetfx run` in this process (the real CLI); prints a JSON line with the
exit code and peak RSS (the model server of InfraValidator is a child: reported apart)."""
import json
import resource
import sys

from kubetfx.pipelines import cli

code = cli.main(["run", *sys.argv[1:]])
print(json.dumps({"exit_code": code,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "children_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
