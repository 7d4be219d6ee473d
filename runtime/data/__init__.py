"""Data path: image/disparity I/O, annotation files, datasets, augmentation, synthetic pairs.

Modules (import them directly; this package imports nothing so ``skillbank.runtime.data.io`` and
``synthetic`` stay usable without building datasets):

* ``io``: PFM / 16-bit PNG, disparity and depth decoders, RGB reading, TURBO colour map, atomic writes
* ``annotations``: annotation-file parsing with one error listing every problem
* ``stereo_datasets`` / ``mono_datasets``: dataset classes, registries, ``build_*_dataset``
* ``augment``: spec-driven train augmentation and deterministic eval transforms
* ``splits``: the dataset of a spec's split (``build_split_dataset``, stereo or mono by model type)
* ``loaders``: DataLoader from a split (batch size, workers, padding collate), ``set_epoch``
* ``synthetic``: procedural stereo pairs with exact disparity
* ``errors``: ``DataFileError``, ``AnnotationError``

See README.md in this folder for encodings, the annotation format and the sample contract.
"""
