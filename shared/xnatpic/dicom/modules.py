"""ParaVision → DICOM mapping tables shared by both IODs, and the classic MR Image IOD.

One table per module, citing its PS3.3 section; rows are (keyword, Type, sources in
fallback order, transform[, condition]) — see :class:`xnatpic.dicom.engine.Row`. The
enhanced MR tables are in :mod:`xnatpic.dicom.enhanced_modules`.
"""

from __future__ import annotations

from xnatpic.dicom.engine import Module
from xnatpic.dicom.engine import Row as R

__all__ = [
    "CLASSIC_MR_IOD",
    "FRAME_OF_REFERENCE",
    "GENERAL_EQUIPMENT",
    "GENERAL_SERIES",
    "GENERAL_STUDY",
    "PATIENT",
    "PATIENT_STUDY",
    "SOP_COMMON",
]

PATIENT = Module("Patient", "C.7.1.1", (
    R("PatientName", "2", ("visu:VisuSubjectName", "subject:SUBJECT_name_string"),
      "person_name"),
    R("PatientID", "2", ("visu:VisuSubjectId", "subject:SUBJECT_id")),
    R("PatientBirthDate", "2", ("visu:VisuSubjectBirthDate", "subject:SUBJECT_dbirth"), "da"),
    R("PatientSex", "2", ("visu:VisuSubjectSex", "subject:SUBJECT_sex_animal",
                          "subject:SUBJECT_sex"), "sex"),
    R("PatientComments", "3", ("visu:VisuSubjectComment", "subject:SUBJECT_remarks")),
    R("PatientSpeciesDescription", "1C", ("subject:SUBJECT_species", "visu:VisuSubjectType",
                                          "subject:SUBJECT_type", "const:ANIMAL"),
      "species", "animal"),
    R("PatientBreedDescription", "2C", ("subject:SUBJECT_strain", "subject:SUBJECT_breed"),
      "text", "animal"),
    R("PatientBreedCodeSequence", "2C", (), "identity", "animal"),
    R("BreedRegistrationSequence", "2C", (), "identity", "animal"),
    R("ResponsiblePerson", "2C", ("visu:VisuStudyReferringPhysician",
                                  "subject:SUBJECT_referral"), "person_name", "animal"),
    R("ResponsiblePersonRole", "1C", ("const:INVESTIGATOR",), "text", "responsible_person"),
    R("ResponsibleOrganization", "2C", ("visu:VisuInstitution", "acqp:ACQ_institution"),
      "text", "animal"),
))

GENERAL_STUDY = Module("General Study", "C.7.2.1", (
    R("StudyInstanceUID", "1", ("series:study_uid",), "identity"),
    R("StudyDate", "2", ("visu:VisuStudyDate", "subject:SUBJECT_date"), "da"),
    R("StudyTime", "2", ("visu:VisuStudyDate", "subject:SUBJECT_date"), "tm"),
    R("ReferringPhysicianName", "2", ("visu:VisuStudyReferringPhysician",
                                      "subject:SUBJECT_referral"), "person_name"),
    R("StudyID", "2", ("visu:VisuStudyId", "subject:SUBJECT_study_name")),
    R("AccessionNumber", "2", ()),
    R("StudyDescription", "3", ("visu:VisuStudyDescription", "subject:SUBJECT_study_name",
                                "visu:VisuStudyId")),
))

PATIENT_STUDY = Module("Patient Study", "C.7.2.2", (
    R("PatientAge", "3", ("series:patient_age",)),
    R("PatientWeight", "3", ("visu:VisuSubjectWeight", "subject:SUBJECT_weight"), "ds"),
    R("PatientSexNeutered", "2C", ("subject:SUBJECT_sex_animal",), "sex_neutered", "animal"),
))

GENERAL_SERIES = Module("General Series", "C.7.3.1", (
    R("Modality", "1", ("const:MR",)),
    R("SeriesInstanceUID", "1", ("series:series_uid",), "identity"),
    R("SeriesNumber", "2", ("series:series_number",), "integer"),
    # Laterality (2C) is not required: ImageLaterality (classic) or FrameLaterality
    # (enhanced) is present.
    R("SeriesDate", "3", ("visu:VisuSeriesDate", "visu:VisuCreationDate",
                          "visu:VisuAcqDate"), "da"),
    R("SeriesTime", "3", ("visu:VisuSeriesDate", "visu:VisuCreationDate",
                          "visu:VisuAcqDate"), "tm"),
    R("ProtocolName", "3", ("visu:VisuAcquisitionProtocol", "acqp:ACQ_protocol_name")),
    R("SeriesDescription", "3", ("acqp:ACQ_scan_name", "visu:VisuSeriesComment",
                                 "visu:VisuAcquisitionProtocol")),
    R("OperatorsName", "3", ("acqp:ACQ_operator",), "person_name"),
    # 2C, required for MR (classic and enhanced) whenever Patient Orientation Code Sequence
    # is absent (PS3.3 C.7.3.1): always for our files, whatever the subject type.
    R("PatientPosition", "2", ("visu:VisuSubjectPosition",), "patient_position"),
    R("AnatomicalOrientationType", "1C", ("visu:VisuSubjectType", "subject:SUBJECT_type",
                                          "const:QUADRUPED"),
      "anatomical_orientation", "animal"),
))

FRAME_OF_REFERENCE = Module("Frame of Reference", "C.7.4.1", (
    R("FrameOfReferenceUID", "1", ("series:frame_of_reference_uid",), "identity"),
    R("PositionReferenceIndicator", "2", ()),
))

GENERAL_EQUIPMENT = Module("General Equipment", "C.7.5.1", (
    R("Manufacturer", "2", ("visu:VisuManufacturer", "const:Bruker BioSpin MRI GmbH")),
    R("InstitutionName", "3", ("visu:VisuInstitution", "acqp:ACQ_institution")),
    R("StationName", "3", ("acqp:ACQ_station", "visu:VisuStation")),
    R("ManufacturerModelName", "3", ("visu:VisuStation", "acqp:ACQ_station")),
    R("DeviceSerialNumber", "3", ("visu:VisuSystemOrderNumber",)),
    R("SoftwareVersions", "3", ("series:software_versions",), "text_list"),
))

GENERAL_ACQUISITION = Module("General Acquisition", "C.7.10.1", (
    R("AcquisitionNumber", "3", ("image:temporal_position",), "integer"),
    R("AcquisitionDate", "3", ("image:acquisition_datetime", "visu:VisuAcqDate"), "da"),
    R("AcquisitionTime", "3", ("image:acquisition_datetime", "visu:VisuAcqDate"), "tm"),
))

GENERAL_IMAGE = Module("General Image", "C.7.6.1", (
    R("InstanceNumber", "2", ("image:number",), "integer"),
    R("ContentDate", "2C", ("visu:VisuCreationDate", "visu:VisuSeriesDate"), "da",
      "temporally_related"),
    R("ContentTime", "2C", ("visu:VisuCreationDate", "visu:VisuSeriesDate"), "tm",
      "temporally_related"),
    R("ImageComments", "3", ("image:comment",)),
    # Body part unknown: "U" (unpaired), as FrameLaterality in enhanced files; with it,
    # the series-level Laterality is not required.
    R("ImageLaterality", "3", ("series:image_laterality",)),
    R("BurnedInAnnotation", "3", ("const:NO",)),
))

IMAGE_PLANE = Module("Image Plane", "C.7.6.2", (
    R("PixelSpacing", "1", ("series:pixel_spacing",), "ds_list"),
    R("ImageOrientationPatient", "1", ("image:orientation",), "ds_list"),
    R("ImagePositionPatient", "1", ("image:position",), "ds_list"),
    R("SliceThickness", "2", ("series:slice_thickness",), "ds"),
    R("SliceLocation", "3", ("image:slice_location",), "ds"),
))

IMAGE_PIXEL = Module("Image Pixel", "C.7.6.3", (
    R("SamplesPerPixel", "1", ("const:1",), "integer"),
    R("PhotometricInterpretation", "1", ("const:MONOCHROME2",)),
    R("Rows", "1", ("series:rows",), "integer"),
    R("Columns", "1", ("series:columns",), "integer"),
    R("BitsAllocated", "1", ("const:16",), "integer"),
    R("BitsStored", "1", ("const:16",), "integer"),
    R("HighBit", "1", ("const:15",), "integer"),
    R("PixelRepresentation", "1", ("series:pixel_representation",), "integer"),
))

MR_IMAGE = Module("MR Image", "C.8.3.1", (
    R("ImageType", "1", ("series:image_type",), "text_list"),
    R("ScanningSequence", "1", ("series:scanning_sequence",), "text_list"),
    R("SequenceVariant", "1", ("series:sequence_variant",), "text_list"),
    R("ScanOptions", "2", ("series:scan_options",), "text_list"),
    R("MRAcquisitionType", "2", ("series:mr_acquisition_type",)),
    R("RepetitionTime", "2C", ("image:repetition_time", "method:PVM_RepetitionTime"), "ds",
      "repetition_time_known_or_required"),
    R("EchoTime", "2", ("image:echo_time", "method:PVM_EchoTime"), "ds"),
    R("EchoTrainLength", "2", ("visu:VisuAcqEchoTrainLength",), "positive_integer"),
    R("InversionTime", "2C", ("image:inversion_time",), "ds", "inversion_recovery"),
    R("SequenceName", "3", ("visu:VisuAcqSequenceName", "acqp:ACQ_method"),
      "sequence_name"),
    R("NumberOfAverages", "3", ("visu:VisuAcqNumberOfAverages", "acqp:NA"), "ds"),
    R("ImagingFrequency", "3", ("series:imaging_frequency",), "ds"),
    R("ImagedNucleus", "3", ("visu:VisuAcqImagedNucleus", "acqp:NUC1")),
    R("EchoNumbers", "3", ("image:echo_number",), "integer"),
    R("MagneticFieldStrength", "3", ("visu:VisuMagneticFieldStrength",
                                     "series:field_strength_from_f0"), "ds"),
    R("SpacingBetweenSlices", "3", ("series:spacing_between_slices",), "ds"),
    R("NumberOfPhaseEncodingSteps", "3", ("visu:VisuAcqPhaseEncSteps",), "integer"),
    R("PixelBandwidth", "3", ("visu:VisuAcqPixelBandwidth",), "ds"),
    R("AcquisitionMatrix", "3", ("series:acquisition_matrix",), "identity"),
    R("InPlanePhaseEncodingDirection", "3", ("series:phase_encoding_direction",)),
    R("FlipAngle", "3", ("image:flip_angle",), "ds"),
    R("TemporalPositionIdentifier", "3", ("image:temporal_position",), "integer"),
    R("NumberOfTemporalPositions", "3", ("series:temporal_positions",), "integer"),
    R("AcquisitionDuration", "3", ("visu:VisuAcqScanTime", "method:PVM_ScanTime"),
      "ms_to_s"),
    # Standard MR Diffusion attributes (Standard Extended SOP Class in classic MR);
    # dcm2niix reads them. The b-matrix is in the private block.
    R("DiffusionBValue", "3", ("image:diffusion_b_value",), "ds"),
    R("DiffusionDirectionality", "3", ("image:diffusion_directionality",)),
    R("DiffusionGradientOrientation", "3", ("image:diffusion_orientation",), "ds_list"),
))

#: Not in the MR Image IOD (Standard Extended): without it per-frame slopes are lost.
#: Omitted when every image of the series has the identity rescale.
MODALITY_LUT = Module("Modality LUT", "C.11.1", (
    R("RescaleIntercept", "1C", ("image:rescale_intercept",), "ds", "rescaled"),
    R("RescaleSlope", "1C", ("image:rescale_slope",), "ds", "rescaled"),
    R("RescaleType", "1C", ("series:rescale_type",), "text", "rescaled"),
))

VOI_LUT = Module("VOI LUT", "C.11.2", (
    R("WindowCenter", "3", ("image:window_center",), "ds"),
    R("WindowWidth", "3", ("image:window_width",), "ds"),
))

SOP_COMMON = Module("SOP Common", "C.12.1", (
    R("SOPClassUID", "1", ("series:sop_class_uid",), "identity"),
    R("SOPInstanceUID", "1", ("image:sop_instance_uid",), "identity"),
    R("SpecificCharacterSet", "1C", ("const:ISO_IR 192",), "text", "utf8_text"),
    R("TimezoneOffsetFromUTC", "3", ("visu:VisuStudyDate", "visu:VisuAcqDate"),
      "utc_offset"),
))

#: MR Image IOD (PS3.3 A.4).
CLASSIC_MR_IOD: tuple[Module, ...] = (
    SOP_COMMON, PATIENT, GENERAL_STUDY, PATIENT_STUDY, GENERAL_SERIES, FRAME_OF_REFERENCE,
    GENERAL_EQUIPMENT, GENERAL_ACQUISITION, GENERAL_IMAGE, IMAGE_PLANE, IMAGE_PIXEL,
    MR_IMAGE, MODALITY_LUT, VOI_LUT,
)
