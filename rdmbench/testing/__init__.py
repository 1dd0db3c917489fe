"""Contract test classes, one per plugin kind, that a plugin's tests subclass, in this package or in an
outside one (diffusers' ``SchedulerCommonTest`` pattern):

    from rdmbench.testing import RetrieverContract

    class TestMyRetriever(RetrieverContract):
        name = "my-retriever"            # the registered plugin name
        build = {"trees": 8}             # constructor arguments
        query = {"search_k": 2000}       # query-time arguments
        library = "mylib"                # the module whose absence must give an install hint

| kind | class | module |
|---|---|---|
| dataset | ``DatasetContract`` | ``rdmbench.testing.dataset`` |
| database | ``DatabaseContract`` | ``rdmbench.testing.database`` |
| encoder | ``EncoderContract`` | ``rdmbench.testing.encoder`` |
| retriever | ``RetrieverContract`` | ``rdmbench.testing.retriever`` |
| first_stage | ``FirstStageContract`` | ``rdmbench.testing.first_stage`` |
| head | ``HeadContract`` | ``rdmbench.testing.head`` |
| metric | ``MetricContract`` | ``rdmbench.testing.metric`` |
| sampling_mode | ``SamplingModeContract`` | ``rdmbench.testing.sampling`` |

Each class's docstring lists the class attributes a subclass sets and what it checks; a failing check says
what it measured. ``rdmbench.testing.common`` holds the helpers they share (test data, ``Hide``).
Needs pytest (the ``dev`` extra).
"""

from rdmbench.testing.common import (Hide, RecordingProgress, assert_cheap, assert_missing_library_explained,
                                     assert_registered, clustered, exact_ids, labelled_images, no_file_io,
                                     photo_like, recall, without_library)
from rdmbench.testing.database import DatabaseContract
from rdmbench.testing.dataset import DatasetContract
from rdmbench.testing.encoder import EncoderContract
from rdmbench.testing.first_stage import FirstStageContract, random_images
from rdmbench.testing.head import HeadContract
from rdmbench.testing.metric import CLASSES, DIM, MetricContract, labelled_features, make_inputs, text_inputs
from rdmbench.testing.retriever import RetrieverContract
from rdmbench.testing.sampling import SamplingModeContract

__all__ = [
    "DatasetContract", "DatabaseContract", "EncoderContract", "RetrieverContract", "FirstStageContract",
    "HeadContract", "MetricContract", "SamplingModeContract",
    "Hide", "RecordingProgress", "assert_cheap", "assert_missing_library_explained", "assert_registered",
    "clustered", "exact_ids", "labelled_images", "no_file_io", "photo_like", "recall", "without_library",
    "random_images", "CLASSES", "DIM", "labelled_features", "make_inputs", "text_inputs",
]
