"""The official `openai` Python SDK against a running gateway: audio.speech.create and
audio.transcriptions.create, used exactly as an application uses them. The speech is saved to a
.wav that Python's `wave` module must read; that file is then transcribed.

Run by crates/gw-server/tests/sdk_python.rs, which starts the gateway over a mock upstream:

    python3 tests/sdk/openai_audio.py BASE_URL API_KEY OUT_DIR SPEECH_MODEL TRANSCRIPTION_MODEL

Prints one JSON line with what came back, and exits non-zero on the first call the SDK or the
`wave` module cannot handle.
"""

import json
import os
import sys
import wave

import openai


def main() -> int:
    base_url, api_key, out_dir, speech_model, transcription_model = sys.argv[1:6]
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
    path = os.path.join(out_dir, "hello.wav")
    speech = client.audio.speech.create(
        model=speech_model, voice="Kore", input="Hello from the gateway", response_format="wav"
    )
    speech.write_to_file(path)
    with wave.open(path, "rb") as w:
        report = {
            "channels": w.getnchannels(),
            "sample_width": w.getsampwidth(),
            "rate": w.getframerate(),
            "frames": w.getnframes(),
        }
    with open(path, "rb") as audio:
        transcript = client.audio.transcriptions.create(model=transcription_model, file=audio)
    report["text"] = transcript.text
    with open(path, "rb") as audio:
        plain = client.audio.transcriptions.create(
            model=transcription_model, file=audio, response_format="text"
        )
    report["plain"] = plain if isinstance(plain, str) else str(plain)
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
