"""The official `openai` Python SDK against a running gateway: images.generate and images.edit,
used exactly as an application uses them, each image written to a file and opened with Pillow.

Run by crates/gw-server/tests/sdk_python.rs, which starts the gateway over a mock upstream:

    python3 tests/sdk/openai_images.py BASE_URL API_KEY OUT_DIR CASES_JSON

CASES_JSON is a list of {"call": "generate" | "edit", "model": ..., "prompt": ...,
"response_format": ..., "image": PATH (edits)}. Prints one JSON line per case with what came
back (the image's format and size as Pillow reads them, or the URL), and exits non-zero on the
first case the SDK or Pillow cannot handle.
"""

import base64
import json
import os
import sys

import openai
from PIL import Image


def main() -> int:
    base_url, api_key, out_dir, cases = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
    for i, case in enumerate(cases):
        kwargs = {"model": case["model"], "prompt": case.get("prompt", "a lighthouse at dusk")}
        if "response_format" in case:
            kwargs["response_format"] = case["response_format"]
        if case["call"] == "generate":
            result = client.images.generate(**kwargs)
        else:
            with open(case["image"], "rb") as image:
                result = client.images.edit(image=image, **kwargs)
        report = {"case": i, "model": case["model"], "images": []}
        for j, item in enumerate(result.data):
            if item.b64_json is not None:
                path = os.path.join(out_dir, f"case{i}-{j}.png")
                with open(path, "wb") as f:
                    f.write(base64.b64decode(item.b64_json))
                with Image.open(path) as img:
                    img.verify()
                with Image.open(path) as img:
                    img.load()
                    report["images"].append({"format": img.format, "size": list(img.size)})
            else:
                report["images"].append({"url": item.url})
        usage = result.usage.model_dump() if result.usage is not None else None
        report["usage_images"] = (usage or {}).get("images")
        print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
