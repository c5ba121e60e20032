"""Runs inside the MediaPipe venv (mediapipe==0.10.14 needs numpy<2); driven by benchmarks.compare.

Reads a JSON list of image paths on stdin, writes <index>.png confidence maps (0-255) into the
folder given as argv[1], and prints {"seconds": [...], "version": ...}: the wall time of each
`process()` call, RGB array in, full-resolution confidence map out.
"""
import json
import sys
import time

import cv2
import mediapipe as mp


def main() -> None:
    out_dir, model_selection = sys.argv[1], int(sys.argv[2])
    paths = json.load(sys.stdin)
    seconds = []
    with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=model_selection) as segmenter:
        for index, path in enumerate(paths):
            rgb = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
            start = time.perf_counter()
            confidence = segmenter.process(rgb).segmentation_mask
            seconds.append(time.perf_counter() - start)
            cv2.imwrite(f"{out_dir}/{index}.png", (confidence.clip(0, 1) * 255 + 0.5).astype("uint8"))
    json.dump({"seconds": seconds, "version": mp.__version__}, sys.stdout)


if __name__ == "__main__":
    main()
