# Patients are deliberately not registered in the admin: personal data is read through audited channels only.
