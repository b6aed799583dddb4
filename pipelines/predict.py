"""Predict labels for a CSV of images with a logged or registered model, written as a Kaggle
"Digit Recognizer" submission (ImageId,Label).

    python pipelines/predict.py input=test.csv                          # models:/digitlab@champion
    python pipelines/predict.py input=test.csv output=submission.csv model_uri=runs:/<id>/model

`input` is Kaggle's test.csv layout (pixel0,…,pixel783), or train.csv's (a label column first:
the accuracy is printed too). A model trained on the 8×8 digits reads pixel0,…,pixel63.
"""

import digitlab

if __name__ == "__main__":
    digitlab.prepare_blas()  # before NumPy is imported: OpenBLAS reads its settings as it loads
    from digitlab import cli
    from digitlab.cli import predict

    cli.command("predict", predict.run)
