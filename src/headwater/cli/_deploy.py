"""``headwater deploy run | rollback | history | gate``: registered models to their targets."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from headwater.cli._app import app, console, project

deploy_app = typer.Typer(help="Deploy registered models with a strategy, gates and rollback.\n\n"
                         "Example: headwater deploy run production churn@challenger",
                         no_args_is_help=True)
app.add_typer(deploy_app, name="deploy")


@deploy_app.command("run")
def run(
    target: Annotated[str, typer.Argument(help="a target under deploy.targets")],
    model: Annotated[str | None, typer.Argument(help="NAME@ALIAS or NAME/VERSION (default "
                                                "deploy.model@challenger)")] = None,
    strategy: Annotated[str | None, typer.Option(help="all_at_once | blue_green | canary | "
                                                 "linear (default deploy.strategy.kind)")] = None,
    bake: Annotated[str | None, typer.Option(help="bake time per step, e.g. 30s")] = None,
    gate: Annotated[bool, typer.Option("--gate/--no-gate", help="check the challenger "
                                       "against the champion first")] = True,
) -> None:
    """Gate a model, roll it out step by step with health checks; roll back on failure.

    Example: headwater deploy run production churn@challenger --strategy canary --bake 10m
    """
    from headwater.deploy import deploy_model

    proj = project()
    update = {k: v for k, v in {"kind": strategy, "bake": bake}.items() if v is not None}
    chosen = proj.deploy.strategy.model_validate({**proj.deploy.strategy.model_dump(), **update})
    result = deploy_model(proj, target, model, strategy=chosen, gate=gate,
                          on_step=lambda m: console.print(f"  {m}"))
    if result.gate is not None:
        console.print(f"gate: {result.gate.message}")
    d = result.deployment
    colour = {"succeeded": "green", "unchanged": "cyan"}.get(d.status, "red")
    console.print(f"[{colour}]{d.status}[/]: {d.model} version {d.version} on {d.target}"
                  + (f" — {d.reason}" if d.reason else ""))
    if d.status in ("rolled_back", "failed"):
        raise typer.Exit(1)


@deploy_app.command("rollback")
def rollback(target: Annotated[str, typer.Argument(help="a target under deploy.targets")]) -> None:
    """Return a target to the version that served before the current one.

    Example: headwater deploy rollback production
    """
    from headwater.deploy import rollback as go_back

    d = go_back(project(), target, on_step=lambda m: console.print(f"  {m}"))
    console.print(f"[green]{d.status}[/]: {d.model} version {d.version} serves {d.target}")


@deploy_app.command("stop")
def stop(target: Annotated[str, typer.Argument(help="a local target under deploy.targets")],
         ) -> None:
    """Stop a local target's version processes and router (the history stays).

    Example: headwater deploy stop local
    """
    from headwater.deploy import open_target

    chosen = open_target(project(), target, check=False)
    if not hasattr(chosen, "stop"):
        raise typer.BadParameter(f"'{target}' is not a local target; only local targets stop")
    chosen.stop()
    console.print(f"stopped every version and the router of '{target}'")


@deploy_app.command("history")
def history(
    target: Annotated[str | None, typer.Option(help="only this target")] = None,
    limit: Annotated[int, typer.Option(help="most rows")] = 20,
) -> None:
    """What was deployed where and when, from which commit, with which result.

    Example: headwater deploy history --target production
    """
    from headwater.deploy import history_for

    rows = history_for(project()).list(target=target, limit=limit)
    table = Table(title="deployments", header_style="bold cyan")
    for col in ("started", "target", "model", "version", "previous", "strategy", "status",
                "commit", "reason"):
        table.add_column(col)
    for r in rows:
        table.add_row(f"{r['started_at']:%Y-%m-%d %H:%M:%S}", r["target"], r["model"],
                      str(r["version"]), str(r["previous_version"] or ""), r["strategy"],
                      r["status"], (r["commit"] or "")[:10], r.get("reason", "")[:80])
    console.print(table if rows else "no deployments yet")


@deploy_app.command("gate")
def gate_check(model: Annotated[str, typer.Argument(help="registered model name")]) -> None:
    """Compare the challenger's holdout metric with the champion's (nothing is deployed).

    Example: headwater deploy gate churn
    """
    from headwater.deploy import quality_gate
    from headwater.ml import Tracker

    proj = project()
    result = quality_gate(Tracker.for_project(proj), model, proj.deploy.gate)
    console.print(("[green]" if result.passed else "[red]") + result.message + "[/]")
    if not result.passed:
        raise typer.Exit(1)


ci_app = typer.Typer(help="CI/CD workflows that test and run the pipeline on a commit.\n\n"
                     "Example: headwater ci init github --pipeline churn", no_args_is_help=True)
app.add_typer(ci_app, name="ci")


@ci_app.command("init")
def ci_init(
    kind: Annotated[str, typer.Argument(help="github | gitlab | azure | codepipeline")],
    pipeline: Annotated[str | None, typer.Option(help="the pipeline under deploy.pipelines "
                                                 "(default: the only one)")] = None,
    force: Annotated[bool, typer.Option(help="overwrite an existing workflow")] = False,
) -> None:
    """Write a workflow that runs the tests and `headwater pipeline run` on a push to main.

    Example: headwater ci init github --pipeline churn
    """
    from headwater.deploy._ci import write_workflow
    from headwater.deploy._pipeline import pipeline_spec

    proj = project()
    name, spec = pipeline_spec(proj, pipeline)
    path = write_workflow(proj.root, kind, pipeline=name, force=force)
    console.print(f"wrote {path}: on a push to main it runs `headwater pipeline run {name}` "
                  f"({spec.staging} → {spec.production}); put the cloud credentials in the CI's "
                  "secret store")


@app.command("package")
def package(
    model: Annotated[str, typer.Argument(help="NAME@ALIAS or NAME/VERSION")],
    out: Annotated[str, typer.Option(help="folder the bundle is written under")] = "bundles",
    build: Annotated[bool, typer.Option(help="build the OCI image with docker, podman or "
                                        "buildah")] = False,
    run: Annotated[bool, typer.Option(help="start the bundle as a local process on "
                                      "--port (its container routes)")] = False,
    port: Annotated[int, typer.Option(help="port for --run")] = 8080,
    push: Annotated[str | None, typer.Option(help="build the image as this name and push it, "
                                             "e.g. myacr.azurecr.io/headwater-serve:1 (needs "
                                             "docker, podman or buildah, logged in)")] = None,
) -> None:
    """Bundle a registered model with its server, pinned requirements and a Dockerfile.

    Example: headwater package churn@champion --push myacr.azurecr.io/headwater-serve:1
    """
    import subprocess
    from pathlib import Path

    from headwater.deploy._bundle import (
        build_bundle,
        build_command,
        push_commands,
        push_hint,
        run_bundle,
    )

    proj = project()
    bundle = build_bundle(proj, model, proj.path(out))
    console.print(f"bundle [bold]{bundle.path}[/] ({bundle.model} version {bundle.version}, "
                  f"sha256 {bundle.digest[:16]}…)")
    command = build_command(bundle.path)
    if push:
        steps = push_commands(bundle.path, push)
        if not steps:
            console.print(f"[red]nothing was pushed[/]: no docker, podman or buildah on this "
                          f"machine. The build context is {bundle.path}; push it with:\n  "
                          + push_hint(bundle.path, push))
            raise typer.Exit(1)
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True)
            if done.returncode:
                last = (done.stderr.strip().splitlines() or ["no output"])[-1]
                console.print(f"[red]{' '.join(step[:2])} failed[/]: {last}\n  hint: log in "
                              "first (az acr login --name <registry>, or docker login)")
                raise typer.Exit(1)
        console.print(f"pushed {push}")
    elif build:
        if not command:
            raise typer.BadParameter("no docker, podman or buildah on this machine")
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            console.print(f"[red]image build failed[/]: {done.stderr.strip().splitlines()[-1:]}")
            raise typer.Exit(1)
        console.print(f"built image headwater/{bundle.path.name}")
    else:
        console.print("build the image with: "
                      + (" ".join(command) or f"docker build -t headwater/{bundle.path.name} "
                         f"{bundle.path}"))
    if run:
        proc = run_bundle(Path(bundle.path), port=port)
        console.print(f"serving on http://127.0.0.1:{port} (/ping, /invocations, /score); "
                      "Ctrl-C stops")
        try:
            proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            proc.wait()
