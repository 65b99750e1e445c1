"""Bundled example data: a small code file that ``hashkit eval --example`` evaluates.

``mfeat_cca32.npz`` holds 32-bit image and text codes for UCI Multiple Features (2,000
handwritten digits, 10 classes; "image" = the 240-d pixel view ``mfeat-pix``, "text" = the
76-d Fourier view ``mfeat-fou``), 200 queries / 1,800 database items, made by
``make_example.py`` in this folder (seeded stratified split, linear CCA fitted on the
database, sign). Source data: UCI Machine Learning Repository, "Multiple Features"
(R. P. W. Duin), CC BY 4.0.
"""
