"""``headwater serve``: a registered model behind HTTP (FastAPI/uvicorn)."""

from __future__ import annotations

from typing import Annotated

import typer

from headwater.cli._app import app, console, project


@app.command("serve")
def serve(
    model: Annotated[str, typer.Argument(help="NAME@ALIAS (e.g. churn@challenger), "
                                         "NAME/VERSION, or NAME for the latest version")],
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="port (default 8000; 8080 with "
                                             "--sagemaker)")] = None,
    candidate: Annotated[str | None, typer.Option(help="a second model for an A/B split "
                                                  "(variant b)")] = None,
    split: Annotated[float, typer.Option(help="share of users sent to --candidate, sticky "
                                         "by user")] = 0.5,
    shadow: Annotated[str | None, typer.Option(help="a model scored on requests but never "
                                               "served; compared in /metrics")] = None,
    shadow_sample: Annotated[float, typer.Option(help="share of requests the shadow model "
                                                 "scores")] = 1.0,
    redis: Annotated[str | None, typer.Option(help="online state in Redis (several replicas), "
                                              "e.g. redis://127.0.0.1:6379/0")] = None,
    key_prefix: Annotated[str, typer.Option(help="prefix of the Redis keys")] = "headwater:serve",
    replica: Annotated[str, typer.Option(help="this replica's name (its interaction log "
                                         "topic is interactions-NAME)")] = "0",
    reload_every: Annotated[float, typer.Option(help="seconds between checks whether the "
                                                "alias moved (0: never)")] = 10.0,
    refresh_every: Annotated[float, typer.Option(help="seconds between folding new "
                                                 "interactions into the recommender")] = 60.0,
    auth: Annotated[bool, typer.Option("--auth/--no-auth", help="require the API key from "
                                       "$HEADWATER_API_KEY")] = True,
    sagemaker: Annotated[bool, typer.Option(help="add SageMaker's /ping and /invocations")
                         ] = False,
    azureml: Annotated[bool, typer.Option(help="add Azure ML's / and /score")] = False,
) -> None:
    """Serve a registered model: /predict for classifiers and regressors, /recommendations,
    /interactions and /similar for recommenders; /healthz, /readyz, /metrics, docs at /docs.

    Example: HEADWATER_API_KEY=s3cret headwater serve churn@challenger --port 8000
    """
    from headwater.ml import Tracker
    from headwater.serve import ServeSettings, api_key_from_env, run_server

    current = project()
    settings = ServeSettings(
        model, candidate=candidate, split=split, shadow=shadow, shadow_sample=shadow_sample,
        api_key=api_key_from_env(), auth=auth, redis_url=redis, key_prefix=key_prefix,
        log_dir=current.state_dir / "serve", replica=replica, reload_s=reload_every,
        refresh_s=refresh_every, sagemaker=sagemaker, azureml=azureml).check()
    port = port if port is not None else (8080 if sagemaker else 8000)

    def ready(server: object) -> None:
        variants = ", ".join(f"{n}={v.served.label}"
                             for n, v in server.variants.items())  # type: ignore[attr-defined]
        console.print(f"serving [bold]{variants}[/] ({server.kind}) on "  # type: ignore[attr-defined]
                      f"http://{host}:{port} · docs http://{host}:{port}/docs · "
                      f"{'API key required' if auth else '[yellow]no API key[/]'} · Ctrl+C stops")

    console.print(f"loading {model} ...")
    run_server(settings, tracker=Tracker.for_project(current), host=host, port=port,
               on_ready=ready)
