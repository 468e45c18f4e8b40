"""The AWS side: what the Lambda functions, the state machine and the Fargate task share.

* ``naming``      deterministic SageMaker resource names, run ids and tags for one execution.
* ``settings``    the deployment's settings, read from the environment the template sets.
* ``events``      pydantic models of the events that pass between the states.
* ``validate``    the first state: check the input, resolve prices, plan the Map's items.
* ``smoke``       invoke a fresh endpoint once with the sample payload.
* ``finish``      after the Map: failed summaries, recommendation.json, report.html, output.
* ``loadgen_task`` the Fargate container's entrypoint logic (parameters from the environment).
* ``failures``    turning Step Functions' {Error, Cause} into one readable reason.

Each function takes its AWS clients as arguments so tests can pass moto's; nothing here is
imported at module load by the local mode.
"""
