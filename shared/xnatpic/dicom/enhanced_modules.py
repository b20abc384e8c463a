"""Mapping tables of the Enhanced MR Image IOD (PS3.3 A.36.2) and its functional groups.

Top-level modules not repeated here (Patient, General Study, Patient Study, General
Series, Frame of Reference, Image Pixel) are shared with the classic IOD in
:mod:`xnatpic.dicom.modules`. Functional-group macros have ``sequence`` set: their rows
fill the single item of that sequence, per frame, and the writer moves a macro to the
Shared Functional Groups when its item is the same for every frame.
"""

from __future__ import annotations

from xnatpic.dicom.engine import Module
from xnatpic.dicom.engine import Row as R
from xnatpic.dicom.modules import (
    FRAME_OF_REFERENCE,
    GENERAL_SERIES,
    GENERAL_STUDY,
    IMAGE_PIXEL,
    PATIENT,
    PATIENT_STUDY,
)

__all__ = ["ENHANCED_MR_IOD", "FUNCTIONAL_GROUPS"]

SOP_COMMON = Module("SOP Common", "C.12.1", (
    R("SOPClassUID", "1", ("series:sop_class_uid",), "identity"),
    R("SOPInstanceUID", "1", ("series:instance_uid",), "identity"),
    R("SpecificCharacterSet", "1C", ("const:ISO_IR 192",), "text", "utf8_text"),
    R("TimezoneOffsetFromUTC", "3", ("visu:VisuStudyDate", "visu:VisuAcqDate"),
      "utc_offset"),
))

#: General Equipment (C.7.5.1) with the Types of Enhanced General Equipment (C.7.5.2).
EQUIPMENT = Module("General Equipment, Enhanced General Equipment", "C.7.5.2", (
    R("Manufacturer", "1", ("visu:VisuManufacturer", "const:Bruker BioSpin MRI GmbH")),
    R("InstitutionName", "3", ("visu:VisuInstitution", "acqp:ACQ_institution")),
    R("StationName", "3", ("acqp:ACQ_station", "visu:VisuStation")),
    R("ManufacturerModelName", "1", ("visu:VisuStation", "acqp:ACQ_station",
                                     "const:ParaVision")),
    R("DeviceSerialNumber", "1", ("visu:VisuSystemOrderNumber", "const:UNKNOWN")),
    R("SoftwareVersions", "1", ("series:software_versions",), "text_list"),
))

MULTI_FRAME_FUNCTIONAL_GROUPS = Module("Multi-frame Functional Groups", "C.7.6.16", (
    R("InstanceNumber", "1", ("const:1",), "integer"),
    R("ContentDate", "1", ("visu:VisuCreationDate", "visu:VisuSeriesDate", "visu:VisuAcqDate"),
      "da"),
    R("ContentTime", "1", ("visu:VisuCreationDate", "visu:VisuSeriesDate", "visu:VisuAcqDate"),
      "tm"),
    R("NumberOfFrames", "1", ("series:frame_count",), "integer"),
))

MULTI_FRAME_DIMENSION = Module("Multi-frame Dimension", "C.7.6.17", (
    R("DimensionOrganizationSequence", "1", ("series:dimension_organization_items",),
      "identity"),
    R("DimensionIndexSequence", "1", ("series:dimension_index_items",), "identity"),
))

ACQUISITION_CONTEXT = Module("Acquisition Context", "C.7.6.14", (
    R("AcquisitionContextSequence", "2", ()),
))

ENHANCED_MR_IMAGE = Module("Enhanced MR Image", "C.8.13.1", (
    R("ImageType", "1", ("series:image_type",), "text_list"),
    R("AcquisitionNumber", "3", ("const:1",), "integer"),
    R("AcquisitionDateTime", "1C", ("visu:VisuAcqDate", "visu:VisuSeriesDate"), "dt",
      "original"),
    R("AcquisitionDuration", "1C", ("visu:VisuAcqScanTime", "method:PVM_ScanTime"),
      "ms_to_s", "original"),
    R("ContentQualification", "1C", ("const:RESEARCH",), "text", "original"),
    R("ResonantNucleus", "1C", ("visu:VisuAcqImagedNucleus", "acqp:NUC1", "const:1H"),
      "text", "original"),
    R("KSpaceFiltering", "1C", ("series:k_space_filtering",), "text", "original"),
    R("MagneticFieldStrength", "1C", ("visu:VisuMagneticFieldStrength",
                                      "series:field_strength_from_f0"), "ds", "original"),
    # IEC 60601-2-33 is the standard MR systems are built to; ParaVision does not say.
    R("ApplicableSafetyStandardAgency", "1C", ("const:IEC",), "text", "original"),
    R("PixelPresentation", "1", ("const:MONOCHROME",)),
    R("VolumetricProperties", "1", ("const:VOLUME",)),
    R("VolumeBasedCalculationTechnique", "1", ("const:NONE",)),
    R("ComplexImageComponent", "1", ("series:complex_component",)),
    R("AcquisitionContrast", "1", ("series:acquisition_contrast",)),
    R("BurnedInAnnotation", "3", ("const:NO",)),
    R("LossyImageCompression", "1C", ("const:00",), "text", "original"),
    R("PresentationLUTShape", "1", ("const:IDENTITY",)),
))

MR_PULSE_SEQUENCE = Module("MR Pulse Sequence", "C.8.13.4", (
    R("PulseSequenceName", "1C", ("visu:VisuAcqSequenceName", "acqp:ACQ_method"),
      "sequence_name", "original"),
    R("MRAcquisitionType", "1C", ("series:mr_acquisition_type",), "text", "original"),
    R("EchoPulseSequence", "1C", ("series:echo_pulse_sequence",), "text", "original"),
    R("MultipleSpinEcho", "1C", ("series:multiple_spin_echo",), "text", "spin_echo"),
    R("MultiPlanarExcitation", "1C", ("series:multi_planar_excitation",), "text",
      "original"),
    R("PhaseContrast", "1C", ("const:NO",), "text", "original"),
    R("TimeOfFlightContrast", "1C", ("series:time_of_flight",), "text", "original"),
    R("ArterialSpinLabelingContrast", "3", ()),
    R("SteadyStatePulseSequence", "1C", ("const:NONE",), "text", "original"),
    R("EchoPlanarPulseSequence", "1C", ("series:epi",), "text", "original"),
    R("SaturationRecovery", "1C", ("const:NO",), "text", "original"),
    R("SpectrallySelectedSuppression", "1C", ("series:spectral_suppression",), "text",
      "original"),
    R("OversamplingPhase", "1C", ("series:oversampling_phase",), "text", "original"),
    R("GeometryOfKSpaceTraversal", "1C", ("series:k_space_traversal",), "text", "original"),
    R("RectilinearPhaseEncodeReordering", "1C", ("series:phase_reordering",), "text",
      "rectilinear"),
    R("SegmentedKSpaceTraversal", "1C", ("series:segmented_k_space",), "text", "original"),
    R("CoverageOfKSpace", "1C", ("const:FULL",), "text", "three_d"),
    R("NumberOfKSpaceTrajectories", "1C", ("visu:VisuAcqKSpaceTrajectoryCnt", "const:1"),
      "positive_integer", "original"),
))

#: Enhanced MR Image IOD (PS3.3 A.36.2): top-level modules.
ENHANCED_MR_IOD: tuple[Module, ...] = (
    SOP_COMMON, PATIENT, GENERAL_STUDY, PATIENT_STUDY, GENERAL_SERIES, FRAME_OF_REFERENCE,
    EQUIPMENT, IMAGE_PIXEL, MULTI_FRAME_FUNCTIONAL_GROUPS, MULTI_FRAME_DIMENSION,
    ACQUISITION_CONTEXT, ENHANCED_MR_IMAGE, MR_PULSE_SEQUENCE,
)

# --- Functional group macros (PS3.3 C.7.6.16.2 and C.8.13.5) -------------------------

PIXEL_MEASURES = Module("Pixel Measures", "C.7.6.16.2.1", (
    R("PixelSpacing", "1C", ("series:pixel_spacing",), "ds_list", "original"),
    R("SliceThickness", "1C", ("series:slice_thickness",), "ds", "original"),
    R("SpacingBetweenSlices", "3", ("series:spacing_between_slices",), "ds"),
), sequence="PixelMeasuresSequence")

FRAME_CONTENT = Module("Frame Content", "C.7.6.16.2.2", (
    R("FrameAcquisitionNumber", "3", ("image:temporal_position",), "integer"),
    R("FrameReferenceDateTime", "1C", ("visu:VisuAcqDate", "visu:VisuSeriesDate"), "dt",
      "original"),
    R("FrameAcquisitionDateTime", "1C",
      ("image:acquisition_datetime", "visu:VisuAcqDate", "visu:VisuSeriesDate"), "dt",
      "original"),
    R("FrameAcquisitionDuration", "1C", ("series:frame_duration_ms", "const:0"), "ds",
      "original"),
    R("DimensionIndexValues", "1C", ("image:dimension_index_values",), "identity",
      "dimension_index"),
    R("TemporalPositionIndex", "3", ("image:temporal_position_index",), "integer"),
    R("StackID", "3", ("const:1",)),
    R("InStackPositionNumber", "3", ("image:stack_position",), "integer"),
    R("FrameComments", "3", ("image:comment",)),
), sequence="FrameContentSequence")

PLANE_POSITION = Module("Plane Position (Patient)", "C.7.6.16.2.3", (
    R("ImagePositionPatient", "1", ("image:position",), "ds_list"),
), sequence="PlanePositionSequence")

PLANE_ORIENTATION = Module("Plane Orientation (Patient)", "C.7.6.16.2.4", (
    R("ImageOrientationPatient", "1", ("image:orientation",), "ds_list"),
), sequence="PlaneOrientationSequence")

FRAME_ANATOMY = Module("Frame Anatomy", "C.7.6.16.2.8", (
    R("AnatomicRegionSequence", "1", ("series:anatomic_region",), "identity"),
    R("FrameLaterality", "1", ("const:U",)),
), sequence="FrameAnatomySequence")

PIXEL_VALUE_TRANSFORMATION = Module("Pixel Value Transformation", "C.7.6.16.2.9", (
    R("RescaleIntercept", "1", ("image:rescale_intercept",), "ds"),
    R("RescaleSlope", "1", ("image:rescale_slope",), "ds"),
    R("RescaleType", "1", ("series:rescale_type",)),
), sequence="PixelValueTransformationSequence")

FRAME_VOI_LUT = Module("Frame VOI LUT", "C.7.6.16.2.10", (
    R("WindowCenter", "1C", ("image:window_center",), "ds", "has_window"),
    R("WindowWidth", "1C", ("image:window_width",), "ds", "has_window"),
), sequence="FrameVOILUTSequence")

MR_IMAGE_FRAME_TYPE = Module("MR Image Frame Type", "C.8.13.5.1", (
    R("FrameType", "1", ("image:frame_type",), "text_list"),
    R("PixelPresentation", "1", ("const:MONOCHROME",)),
    R("VolumetricProperties", "1", ("const:VOLUME",)),
    R("VolumeBasedCalculationTechnique", "1", ("const:NONE",)),
    R("ComplexImageComponent", "1", ("image:complex_component",)),
    R("AcquisitionContrast", "1", ("image:frame_contrast",)),
), sequence="MRImageFrameTypeSequence")

MR_TIMING = Module("MR Timing and Related Parameters", "C.8.13.5.2", (
    R("RepetitionTime", "1C", ("image:repetition_time", "method:PVM_RepetitionTime",
                               "const:0"), "ds", "original"),
    R("FlipAngle", "1C", ("image:flip_angle", "acqp:ACQ_flip_angle"), "ds", "original"),
    R("EchoTrainLength", "1C", ("visu:VisuAcqEchoTrainLength", "const:1"),
      "positive_integer", "original"),
    R("RFEchoTrainLength", "1C", ("series:rf_echo_train",), "integer", "original"),
    R("GradientEchoTrainLength", "1C", ("series:gradient_echo_train",), "integer",
      "original"),
    # ParaVision records neither SAR nor operating modes; dciodvfy requires items:
    # placeholders (SAR 0 W/kg, IEC_NORMAL), see derived_enhanced.PLACEHOLDERS.
    R("SpecificAbsorptionRateSequence", "1C", ("series:sar_items",), "identity", "original"),
    R("OperatingModeSequence", "1C", ("series:operating_mode_items",), "identity",
      "original"),
), sequence="MRTimingAndRelatedParametersSequence")

MR_FOV_GEOMETRY = Module("MR FOV/Geometry", "C.8.13.5.3", (
    R("InPlanePhaseEncodingDirection", "1C", ("series:phase_encoding_direction_enhanced",
                                               "const:OTHER"), "text", "original"),
    R("MRAcquisitionFrequencyEncodingSteps", "1C", ("series:frequency_steps",
                                                    "series:columns"), "integer", "original"),
    R("MRAcquisitionPhaseEncodingStepsInPlane", "1C", ("visu:VisuAcqPhaseEncSteps",
                                                       "series:phase_steps", "series:rows"),
      "integer", "original"),
    R("MRAcquisitionPhaseEncodingStepsOutOfPlane", "1C", ("series:phase_steps_out_of_plane",),
      "integer", "three_d"),
    R("PercentSampling", "1C", ("series:percent_sampling",), "ds", "original"),
    R("PercentPhaseFieldOfView", "1C", ("series:percent_phase_fov",), "ds", "original"),
), sequence="MRFOVGeometrySequence")

MR_ECHO = Module("MR Echo", "C.8.13.5.4", (
    R("EffectiveEchoTime", "1C", ("image:echo_time", "method:PVM_EchoTime", "const:0"), "ds",
      "original"),
), sequence="MREchoSequence")

MR_MODIFIER = Module("MR Modifier", "C.8.13.5.5", (
    R("InversionRecovery", "1C", ("series:inversion_recovery",), "text", "original"),
    R("InversionTimes", "1C", ("image:inversion_time",), "ds_list", "inversion_recovery"),
    R("FlowCompensation", "1C", ("series:flow_compensation",), "text", "original"),
    R("Spoiling", "1C", ("series:spoiling",), "text", "original"),
    R("T2Preparation", "1C", ("const:NO",), "text", "original"),
    R("SpectrallySelectedExcitation", "1C", ("const:NONE",), "text", "original"),
    R("SpatialPresaturation", "1C", ("const:NONE",), "text", "original"),
    R("PartialFourier", "1C", ("series:partial_fourier",), "text", "original"),
    R("PartialFourierDirection", "1C", ("series:partial_fourier_direction",), "text",
      "partial_fourier"),
    R("ParallelAcquisition", "1C", ("series:parallel_acquisition",), "text", "original"),
    R("ParallelAcquisitionTechnique", "1C", ("const:OTHER",), "text", "parallel"),
), sequence="MRModifierSequence")

MR_IMAGING_MODIFIER = Module("MR Imaging Modifier", "C.8.13.5.6", (
    R("MagnetizationTransfer", "1C", ("series:magnetization_transfer",), "text", "original"),
    R("BloodSignalNulling", "1C", ("series:blood_signal_nulling",), "text", "original"),
    R("Tagging", "1C", ("const:NONE",), "text", "original"),
    R("TransmitterFrequency", "1C", ("series:imaging_frequency",), "ds", "original"),
    R("PixelBandwidth", "1C", ("visu:VisuAcqPixelBandwidth", "const:0"), "ds", "original"),
), sequence="MRImagingModifierSequence")

MR_RECEIVE_COIL = Module("MR Receive Coil", "C.8.13.5.7", (
    R("ReceiveCoilName", "1C", ("series:receive_coil_name",), "text", "original"),
    R("ReceiveCoilManufacturerName", "2C", ("visu:VisuCoilReceiveManufacturer",), "text",
      "original"),
    R("ReceiveCoilType", "1C", ("series:receive_coil_type",), "text", "original"),
    R("QuadratureReceiveCoil", "1C", ("series:receive_coil_quadrature",), "text",
      "original"),
), sequence="MRReceiveCoilSequence")

MR_TRANSMIT_COIL = Module("MR Transmit Coil", "C.8.13.5.8", (
    R("TransmitCoilName", "1C", ("series:transmit_coil_name",), "text", "original"),
    R("TransmitCoilManufacturerName", "2C", ("visu:VisuCoilTransmitManufacturer",), "text",
      "original"),
    R("TransmitCoilType", "1C", ("series:transmit_coil_type",), "text", "original"),
), sequence="MRTransmitCoilSequence")

MR_DIFFUSION = Module("MR Diffusion", "C.8.13.5.9", (
    R("DiffusionBValue", "1C", ("image:diffusion_b_value_or_zero",), "ds", "original"),
    R("DiffusionDirectionality", "1C", ("image:diffusion_directionality_or_none",), "text",
      "original"),
    R("DiffusionGradientDirectionSequence", "1C", ("image:diffusion_gradient_items",),
      "identity", "directional"),
    # DiffusionBMatrixSequence is only allowed with directionality BMATRIX; the b-matrix
    # is in the private block (0029,1033) instead, so DIRECTIONAL frames keep their
    # DiffusionGradientOrientation, which readers such as dcm2niix use.
), sequence="MRDiffusionSequence")

MR_AVERAGES = Module("MR Averages", "C.8.13.5.10", (
    R("NumberOfAverages", "1C", ("visu:VisuAcqNumberOfAverages", "acqp:NA", "const:1"), "ds",
      "original"),
), sequence="MRAveragesSequence")

#: Functional groups of the Enhanced MR Image IOD (PS3.3 A.36.2.4), in writing order.
FUNCTIONAL_GROUPS: tuple[Module, ...] = (
    PIXEL_MEASURES, FRAME_CONTENT, PLANE_POSITION, PLANE_ORIENTATION, FRAME_ANATOMY,
    PIXEL_VALUE_TRANSFORMATION, FRAME_VOI_LUT, MR_IMAGE_FRAME_TYPE, MR_TIMING,
    MR_FOV_GEOMETRY, MR_ECHO, MR_MODIFIER, MR_IMAGING_MODIFIER, MR_RECEIVE_COIL,
    MR_TRANSMIT_COIL, MR_DIFFUSION, MR_AVERAGES,
)
#: Macros that must stay per frame even when identical (PS3.3 C.7.6.16.2.2).
PER_FRAME_ONLY: frozenset[str] = frozenset({"FrameContentSequence"})
