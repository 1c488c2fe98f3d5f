"""The README's main job: `headscope demo` runs the example notebook on the built-in model."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import nbformat
import pytest

from headscope.__main__ import kernel_config, main


def test_demo_finds_heads_by_score_and_saves_pictures_of_its_widgets(tmp_path: Path, capfd, monkeypatch) -> None:
    import numpy as np

    import headscope

    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--out", "demo.ipynb", "--timeout", "300"]) == 0
    # capfd, not capsys: the kernel is a child process that writes to the file descriptors
    printed, errors = capfd.readouterr()
    # no stray kernel warning (ipykernel warns about a kernel on TCP without encryption)
    assert "encryption" not in printed + errors and "IPKernelApp] WARNING" not in printed + errors, errors
    found = {
        name: (int(layer), int(head), float(score))
        for name, layer, head, score in re.findall(
            r"(\w+) head: layer (\d+), head (\d+)  \(score ([0-9.]+)\)", printed
        )
    }
    assert set(found) == {"previous_token", "induction"}
    probe = headscope.induction_probe(None, length=50, seed=0)
    assert f"probe loss: first copy {probe.first_half_loss:.2f}, second copy {probe.second_half_loss:.2f}" in printed
    notebook = nbformat.read(str(tmp_path / "demo.ipynb"), as_version=4)
    prompt = re.search(r'prompt = "([^"]+)"', "".join(c.source for c in notebook.cells)).group(1)
    scores = headscope.head_scores(None, prompt)
    for name, (layer, head, score) in found.items():
        best = np.unravel_index(np.argmax(scores[name]), scores[name].shape)
        assert (layer, head) == tuple(int(i) for i in best)
        assert score == pytest.approx(float(scores[name][layer, head]), abs=0.006)
    # offline: a clear message, whole (not cut mid-word), and no traceback
    with pytest.raises(headscope.ModelUnavailableError) as unavailable:
        headscope.load_model("gpt2")
    assert f"GPT-2 is not available here: {unavailable.value}\n" in printed
    assert "Traceback" not in printed + errors
    # the saved notebook is described as it is: static pictures, and widgets that need a kernel
    assert "widgets included" not in printed
    assert "Saved the executed notebook to demo.ipynb: its printed results and, for each of its 2 widgets," in printed
    assert "static picture" in printed and "run all cells" in printed
    # the main job shows something true: the card's heads, and a model that copies the repeat
    from headscope._builtin import builtin_card

    roles = builtin_card()["roles"]
    assert found["induction"][:2] == tuple(roles["induction"][0]) and found["induction"][2] >= 0.5
    assert found["previous_token"][:2] == tuple(roles["previous_token"][0])
    assert found["previous_token"][2] >= 0.7
    assert probe.second_half_loss < probe.first_half_loss / 3

    notebook = nbformat.read(str(tmp_path / "demo.ipynb"), as_version=4)
    views = [
        output
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if "application/vnd.jupyter.widget-view+json" in output.get("data", {})
    ]
    assert len(views) == 2
    # opened without running it, each widget output shows a real picture: its static fallback,
    # which nbconvert uses because no widget state is saved (with it, nbconvert would load the
    # widget from a CDN instead)
    assert "widgets" not in notebook.metadata
    for output in views:
        png = base64.b64decode(output["data"]["image/png"])
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
        assert "<script" not in output["data"]["text/html"] and "data:image/png;base64," in output["data"]["text/html"]
    induction, previous = (o["data"]["text/html"] for o in views)
    assert "layer {}, head {}".format(*found["induction"][:2]) in induction
    assert "layer {}, head {}".format(*found["previous_token"][:2]) in previous
    assert not [o for c in notebook.cells for o in c.get("outputs", []) if o["output_type"] == "error"]


def test_demo_kernel_never_uses_plain_tcp(tmp_path: Path) -> None:
    import zmq
    from jupyter_client.manager import KernelManager

    posix = kernel_config(tmp_path, posix=True)
    assert posix.KernelManager.transport == "ipc"
    assert posix.KernelManager.ip == str(tmp_path / "kernel")  # sockets in the private folder
    other = kernel_config(tmp_path, posix=False)
    assert "transport" not in other.KernelManager
    if "transport_encryption" in KernelManager.class_traits() and zmq.has("curve"):
        assert other.KernelManager.transport_encryption == "auto"
    else:
        assert "transport_encryption" not in other.KernelManager


@pytest.mark.parametrize("posix", [True, False])
def test_demo_kernel_config_starts_a_kernel_without_the_tcp_warning(tmp_path: Path, capfd, posix: bool) -> None:
    """Both transports of kernel_config, in a real kernel (this machine can do both)."""
    import zmq
    from jupyter_client.manager import KernelManager

    if not posix and not ("transport_encryption" in KernelManager.class_traits() and zmq.has("curve")):
        pytest.skip("this jupyter_client or pyzmq cannot provision CurveZMQ keys")
    printed: list[str] = []
    km = KernelManager(kernel_name="python3", config=kernel_config(tmp_path, posix=posix))
    km.start_kernel()
    try:
        client = km.client()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=60)
            reply = client.execute_interactive(
                "from ipykernel.kernelapp import IPKernelApp\n"
                "app = IPKernelApp.instance()\n"
                "print(app.transport, app.curve_secretkey is not None)",
                timeout=60,
                output_hook=lambda msg: printed.append(msg["content"].get("text", "")),
            )
        finally:
            client.stop_channels()
    finally:
        km.shutdown_kernel(now=False)
    assert reply["content"]["status"] == "ok"
    assert "".join(printed).split() == (["ipc", "False"] if posix else ["tcp", "True"])
    out, err = capfd.readouterr()
    assert "encryption" not in out + err, err
