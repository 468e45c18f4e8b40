"""The Fargate load generator's entrypoint (logic in rightsizer.aws.loadgen_task).

Parameters come from environment variables set by the state machine's ContainerOverrides
(RIGHTSIZER_ENDPOINT_NAME, RIGHTSIZER_PAYLOADS, RIGHTSIZER_OBJECTIVE, RIGHTSIZER_LOAD, ...) and by
the task definition (RIGHTSIZER_PROCESSES = the task's vCPUs). RIGHTSIZER_MODE=preflight runs the
checks the state machine asks for before it creates any endpoint instead. Exit code 0 after a
measurement (or passed checks), non-zero on failure so that ecs:runTask.sync fails the item.
"""

import sys

if __name__ == "__main__":
    # Imported here, not above: the load generator's spawned workers re-run this file's top
    # level, and must not import ssl (botocore) before Locust's gevent patches it.
    from rightsizer.aws.loadgen_task import main

    sys.exit(main())
