"""The official `openai` Python SDK against a running gateway: files.create, fine_tuning.jobs
(create, retrieve, list_events, list), files.content and images.generate with the fine-tuned
model, used exactly as an application uses them, and a refusal the SDK raises as
openai.BadRequestError.

Run by crates/gw-server/tests/sdk_python.rs, which starts the gateway over a mock upstream:

    python3 tests/sdk/openai_fine_tuning.py BASE_URL API_KEY OUT_DIR

Writes OUT_DIR/photos.zip (4 small PNGs drawn with Pillow, each with a .txt caption), trains on
it, and prints one JSON line per step with what came back. Exits non-zero, saying which step and
why on stderr, at the first step that fails or answers what it should not.
"""

import base64
import io
import json
import os
import sys
import time
import zipfile

import openai
from PIL import Image

TRIGGER = "p3r5on"
BASE_MODEL = "wavespeed/flux-dev"
TERMINAL = ("succeeded", "failed", "cancelled")


class StepFailed(Exception):
    """A step answered what it should not."""


def check(step: str, ok: bool, what: str) -> None:
    if not ok:
        raise StepFailed(f"{step}: {what}")


def report(step: str, **fields) -> None:
    print(json.dumps({"step": step, **fields}), flush=True)


def training_zip(path: str) -> int:
    """Writes a zip of 4 PNGs with captions to `path`; its size in bytes."""
    colours = {
        "red": (200, 30, 30),
        "green": (30, 200, 30),
        "blue": (30, 30, 200),
        "yellow": (220, 220, 40),
    }
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for i, (name, rgb) in enumerate(colours.items(), start=1):
            png = io.BytesIO()
            Image.new("RGB", (8, 8), rgb).save(png, format="PNG")
            archive.writestr(f"{TRIGGER}_{i}.png", png.getvalue())
            archive.writestr(f"{TRIGGER}_{i}.txt", f"a photo of {TRIGGER}, {name} light")
    return os.path.getsize(path)


def run(client: openai.OpenAI, out_dir: str) -> None:
    zip_path = os.path.join(out_dir, "photos.zip")
    size = training_zip(zip_path)

    with open(zip_path, "rb") as data:
        file = client.files.create(file=data, purpose="fine-tune")
    report("upload", id=file.id, purpose=file.purpose, bytes=file.bytes, filename=file.filename, size=size)
    check("upload", file.id.startswith("file-"), f"the file id {file.id!r} does not start with file-")
    check("upload", file.purpose == "fine-tune", f"purpose is {file.purpose!r}")
    check("upload", file.bytes == size, f"bytes is {file.bytes}, the zip has {size}")

    job = client.fine_tuning.jobs.create(
        model=BASE_MODEL,
        training_file=file.id,
        suffix=TRIGGER,
        extra_body={"provider_options": {"trigger_word": TRIGGER, "steps": 1000}},
    )
    report("create", id=job.id, status=job.status, model=job.model, training_file=job.training_file)
    check("create", job.status == "queued", f"status is {job.status!r}, not queued")
    check("create", job.training_file == file.id, f"training_file is {job.training_file!r}")

    statuses = []
    for _ in range(10):
        job = client.fine_tuning.jobs.retrieve(job.id)
        statuses.append(job.status)
        if job.status in TERMINAL:
            break
        time.sleep(0.05)
    report(
        "retrieve",
        statuses=statuses,
        status=job.status,
        fine_tuned_model=job.fine_tuned_model,
        result_files=job.result_files,
        error=job.error.model_dump() if job.error is not None else None,
    )
    check("retrieve", job.status == "succeeded", f"the job ended {statuses}, not succeeded")
    prefix = f"ft:{BASE_MODEL}:{TRIGGER}:"
    check(
        "retrieve",
        (job.fine_tuned_model or "").startswith(prefix),
        f"fine_tuned_model {job.fine_tuned_model!r} does not start with {prefix!r}",
    )
    check("retrieve", len(job.result_files) == 1, f"result_files is {job.result_files}")

    weights = client.files.content(job.result_files[0]).read()
    report("result", file=job.result_files[0], base64=base64.b64encode(weights).decode())
    check("result", len(weights) > 0, "the trained LoRA file is empty")

    events = list(client.fine_tuning.jobs.list_events(job.id))
    report("events", messages=[e.message for e in events])
    check("events", len(events) >= 1, "the job has no events")

    listed = [j.id for j in client.fine_tuning.jobs.list()]
    report("list", ids=listed)
    check("list", job.id in listed, f"the job {job.id} is not in the list {listed}")

    image = client.images.generate(
        model=job.fine_tuned_model, prompt=f"{TRIGGER} riding a bike, studio light", response_format="url"
    )
    url = image.data[0].url if image.data else None
    report("generate", model=job.fine_tuned_model, url=url)
    check("generate", bool(url), "no image URL came back")

    try:
        refused = client.fine_tuning.jobs.create(
            model=BASE_MODEL, training_file=file.id, hyperparameters={"n_epochs": 3}
        )
    except openai.BadRequestError as e:
        body = e.body if isinstance(e.body, dict) else {}
        report("refusal", status_code=e.status_code, param=e.param, body=body)
        named = "hyperparameters.n_epochs"
        check(
            "refusal",
            e.param == named or named in str(body.get("message", "")),
            f"the refusal does not name {named}: {e.body}",
        )
    else:
        raise StepFailed(f"refusal: n_epochs=3 was accepted as job {refused.id}")


def main() -> int:
    base_url, api_key, out_dir = sys.argv[1:4]
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
    try:
        run(client, out_dir)
    except StepFailed as e:
        print(f"failed: {e}", file=sys.stderr)
        return 1
    except openai.APIStatusError as e:
        request = e.request
        print(f"failed: {request.method} {request.url} answered {e.status_code}: {e.body}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
